"""Prometheus metrics of the scoring server, kept in memory and written as text by hand.

Counters and histograms with labels, rendered in the Prometheus text exposition
format 0.0.4 (what ``GET /metrics`` answers), so the server needs no
``prometheus_client``. Label sets are bounded by the server (endpoint paths it
knows, status codes, severity levels), never taken from client input.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

LabelValues = tuple[str, ...]
_INF = 'le="+Inf"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(str(value))}"' for name, value in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help_text, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str] | None) -> LabelValues:
        labels = labels or {}
        return tuple(str(labels[name]) for name in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()):
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}
        if not self.label_names:
            self._values[()] = 0

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.label_names, key)} {_number(value)}"
                for key, value in items]


class Gauge(Counter):
    """A value that goes up and down (set, not only incremented)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float],
                 labels: Sequence[str] = ()):
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, list] = {}   # key -> [bucket counts, sum, count]

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [[0] * len(self.buckets), 0.0, 0]
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[0][i] += 1
                    break
            series[1] += value
            series[2] += 1

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted((key, [list(s[0]), s[1], s[2]]) for key, s in self._series.items())
        out = []
        for key, (counts, total, n) in items:
            running = 0
            for bound, hits in zip(self.buckets, counts):
                running += hits
                le = _labels(self.label_names, key, f'le="{_number(bound)}"')
                out.append(f"{self.name}_bucket{le} {running}")
            out.append(f"{self.name}_bucket{_labels(self.label_names, key, _INF)} {n}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(total)}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {n}")
        return out


class ServerMetrics:
    """Every metric the server exports; :meth:`render` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.requests = Counter("radar_requests_total",
                                "HTTP requests answered, by endpoint and status code.",
                                ("endpoint", "status"))
        self.latency = Histogram("radar_request_seconds",
                                 "Time from request start to the end of the response, by "
                                 "endpoint.", LATENCY_BUCKETS, ("endpoint",))
        self.sessions = Counter("radar_sessions_scored_total", "Sessions scored.")
        self.anomalies = Counter("radar_anomalies_total",
                                 "Sessions flagged (is_anomaly), by severity level; NONE for "
                                 "a single-detector run, which grades no severity.",
                                 ("severity",))
        self.batch_sessions = Histogram("radar_batch_sessions",
                                        "Sessions per model call (micro-batch size).",
                                        BATCH_BUCKETS)
        self.batch_requests = Histogram("radar_batch_requests",
                                        "Requests merged into one model call.", BATCH_BUCKETS)
        self.score_seconds = Histogram("radar_score_seconds",
                                       "Time of one model call (a whole micro-batch).",
                                       LATENCY_BUCKETS)
        self.queued = Gauge("radar_queued_sessions", "Sessions waiting for the model.")
        self.ready = Gauge("radar_model_ready", "1 once the models are loaded, else 0.")

    def all(self) -> list[_Metric]:
        return [self.requests, self.latency, self.sessions, self.anomalies,
                self.batch_sessions, self.batch_requests, self.score_seconds, self.queued,
                self.ready]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.header())
            lines.extend(metric.lines())
        return "\n".join(lines) + "\n"
