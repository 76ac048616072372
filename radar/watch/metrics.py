"""What ``radar watch`` reports about itself: a stats line on stderr and Prometheus metrics.

Metric types and the text format are the scoring server's
(:mod:`radar.serve.metrics`); ``--metrics-port`` serves them at ``/metrics`` on
loopback from a small standard-library HTTP server in a thread.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from radar.serve.metrics import (
    BATCH_BUCKETS,
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    Counter,
    Gauge,
    Histogram,
)


class WatchMetrics:
    """Every metric the watcher exports; :meth:`render` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.lines = Counter("radar_watch_lines_total", "Log lines read.")
        self.bad_lines = Counter("radar_watch_bad_lines_total",
                                 "Lines that did not match the line format (skipped).")
        self.closed = Counter("radar_watch_sessions_closed_total",
                              "Sessions closed, by why they closed.", ("reason",))
        self.scored = Counter("radar_watch_sessions_scored_total", "Sessions scored.")
        self.alerts = Counter("radar_watch_alerts_total", "Sessions flagged (is_anomaly).")
        self.open = Gauge("radar_watch_open_sessions", "Sessions open now.")
        self.templates = Gauge("radar_watch_templates", "Templates known (training's and new).")
        self.lag = Gauge("radar_watch_lag_bytes", "Bytes of the followed files not read yet.")
        self.latency = Histogram("radar_watch_alert_latency_seconds",
                                 "Time from a session's close to its record being written.",
                                 LATENCY_BUCKETS)
        self.score_seconds = Histogram("radar_watch_score_seconds",
                                       "Time of one model call (a micro-batch).",
                                       LATENCY_BUCKETS)
        self.batch = Histogram("radar_watch_batch_sessions", "Sessions per micro-batch.",
                               BATCH_BUCKETS)
        self.webhook_failures = Counter("radar_watch_webhook_failures_total",
                                        "Records the webhook did not take after every retry.")
        self.checkpoints = Counter("radar_watch_checkpoints_total", "Checkpoints written.")

    def all(self) -> list:
        return [self.lines, self.bad_lines, self.closed, self.scored, self.alerts, self.open,
                self.templates, self.lag, self.latency, self.score_seconds, self.batch,
                self.webhook_failures, self.checkpoints]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.header())
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"


class StatsLine:
    """``lines/s``, open sessions, alerts and lag, every ``interval_s`` seconds."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.started = self.last_time = time.monotonic()
        self.last_lines = 0
        self.latencies: list[float] = []

    def observe(self, latency_s: float) -> None:
        """One record's latency, kept until the next stats line (only when there is one)."""
        if self.interval_s > 0:
            self.latencies.append(latency_s)

    def due(self, now: float) -> bool:
        return self.interval_s > 0 and now - self.last_time >= self.interval_s

    def line(self, now: float, *, lines: int, open_: int, scored: int, alerts: int,
             lag_bytes: int, templates: int, bad: int) -> str:
        rate = (lines - self.last_lines) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_lines = now, lines
        latencies, self.latencies = sorted(self.latencies), []
        latency = (f", alert latency p50 {latencies[len(latencies) // 2]:.3f} s "
                   f"max {latencies[-1]:.3f} s" if latencies else "")
        return (f"watch: {lines:,} lines ({rate:,.0f}/s), {open_:,} open, {scored:,} scored, "
                f"{alerts:,} alerts, lag {lag_bytes:,} B, {templates:,} templates, "
                f"{bad:,} bad lines{latency}")


def serve_metrics(metrics: WatchMetrics, port: int) -> ThreadingHTTPServer:
    """``GET /metrics`` on 127.0.0.1:``port`` (0 = any free port) in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is here")
                return
            body = metrics.render().encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):           # no access log on stderr
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="radar-watch-metrics",
                     daemon=True).start()
    return server
