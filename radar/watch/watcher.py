"""The watch loop: read lines, group them, score closed sessions in micro-batches, emit.

One thread does everything in order: read what arrived (up to a few thousand lines),
feed it to :class:`~radar.watch.sessions.OnlineSessions`, close wall-clock-idle
sessions, and once the closed sessions fill a micro-batch (``batch_size``) or the
oldest has waited ``batch_wait_s``, score them
(:func:`radar.watch.scoring.score_sessions`), checkpoint (records in the outbox) and
only then write them out. See :mod:`radar.watch.state` for why that order makes
restarts lose and repeat nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

from radar.deadline import StopWhileMatching
from radar.errors import RadarError
from radar.ingest import IngestOptions, resolve
from radar.ingest.formats import compile_regex
from radar.watch.metrics import StatsLine, WatchMetrics, serve_metrics
from radar.watch.scoring import ClosedSession, load_scorer, run_data_dir, score_sessions
from radar.watch.sessions import OnlineSessions
from radar.watch.sink import FileSink, Webhook
from radar.watch.sources import LineSources, StdinSource
from radar.watch.state import WatchState, check_identity, open_templates, run_template_state

READ_LINES = 4096           # lines taken per loop turn (bounds the time between checks)


@dataclasses.dataclass
class WatchOptions:
    """What ``radar watch`` was asked for."""

    run_dir: Path
    state_dir: Path
    files: list[Path] = dataclasses.field(default_factory=list)   # empty: standard input
    ingest: IngestOptions = dataclasses.field(default_factory=IngestOptions)
    templates_state: Path | None = None
    alerts: Path | None = None              # None: standard output
    all_sessions: bool = False
    webhook: str | None = None
    webhook_retries: int = 3
    webhook_timeout_s: float = 5.0
    end_regex: str | None = None
    wall_timeout_s: float | None = None
    max_session_events: int | None = 10_000
    once: bool = False
    batch_size: int = 256
    batch_wait_s: float = 0.2
    checkpoint_interval_s: float = 5.0
    stats_interval_s: float = 10.0
    metrics_port: int | None = None
    device: str = "cpu"
    poll_s: float = 0.2


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="milliseconds")


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


class Watcher:
    """One ``radar watch``: set up from options (and the checkpoint), then :meth:`run`."""

    def __init__(self, options: WatchOptions, *, log: Callable[[str], None], scorer=None,
                 stdin=None):
        self.options, self.log = options, log
        if scorer is None:
            run_data_dir(options.run_dir)       # no run folder: say so before any set-up
        plan = resolve(dataclasses.replace(options.ingest, max_session_lines=0))
        end_regex = _end_regex(options.end_regex, plan.spec.group_by)
        self.state = WatchState(options.state_dir)
        identity = {"run": str(Path(options.run_dir).resolve()), "format": plan.fmt.pattern,
                    "grouping": dataclasses.asdict(plan.spec)}
        saved = self.state.load()
        if saved is None:
            store = open_templates(run_template_state(Path(options.run_dir),
                                                      options.templates_state), plan.fmt)
            saved = self.state.new(identity)
            saved["training_templates"] = store.n_templates
        else:
            check_identity(saved, identity, self.state.dir)
            store = open_templates(self.state.templates_path(), plan.fmt)
        self.store, self.saved = store, saved
        self.sessions = OnlineSessions(plan, store, end_regex=end_regex,
                                       max_events=options.max_session_events)
        self.service = plan.service
        if "sessions" in saved:
            self.sessions.restore(saved["sessions"])
        self.next_id = int(saved.get("next_id", 0))
        self.sources = LineSources(options.files, None if options.files else
                                   StdinSource(stdin), poll_s=options.poll_s)
        if options.once:
            self.sources.set_once()
        for note in self.sources.restore(saved.get("sources", [])):
            log(f"warning: {note}")
        self.scorer = scorer if scorer is not None else load_scorer(options.run_dir,
                                                                    options.device)
        self.metrics = WatchMetrics()
        self.stats = StatsLine(options.stats_interval_s)
        self.pending: list[ClosedSession] = []
        self.outbox: list[dict] = saved.get("outbox", [])
        self.counts = saved.get("counts", {"scored": 0, "alerts": 0, "emitted": 0})
        self.file_sink = FileSink(options.alerts)
        self.file_sink.open(self.outbox[0]["session_id"] if self.outbox else None)
        self.webhook = None if options.webhook is None else Webhook(
            options.webhook, self.state.dir, saved["watch_id"],
            retries=options.webhook_retries, timeout_s=options.webhook_timeout_s)
        if self.webhook is not None:
            self.webhook.recover(int(saved.get("webhook_through", -1)))
        self.metrics_server = (None if options.metrics_port is None
                               else serve_metrics(self.metrics, options.metrics_port))
        self._lines_counted = self._bad_counted = 0
        self._stop = self._dirty = False
        self._last_checkpoint = time.monotonic()

    # -------------------------------------------------------------- the loop
    def run(self) -> dict:
        """Watch until the input ends (stdin closed, ``--once``) or SIGTERM/SIGINT."""
        # A signal only sets a flag: the loop stops between two read batches, never
        # inside one, so the checkpoint's offsets match its open sessions.
        previous = {number: signal.signal(number, self._request_stop)
                    for number in (signal.SIGTERM, signal.SIGINT)}
        started = time.perf_counter()
        abandoned = False
        try:
            if self.outbox:                     # the batch a crash interrupted
                self._deliver(self.outbox)
                self.outbox = []
                self._checkpoint()
            with self.sessions.deadline:        # the time limit on the user's patterns
                self._loop()
        except StopWhileMatching as stuck:
            # stopped inside a batch: its lines are half fed, so the last checkpoint
            # stands and a restart reads them again (from a file; stdin cannot rewind)
            abandoned = True
            self.log(f"warning: stopped while {stuck} was still being matched (a "
                     "--format, --key-regex or --end-regex that backtracks on it?); the "
                     "next start resumes from the last checkpoint")
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            if self._stop and not abandoned:    # keep open sessions for the next start
                self._flush()
            self.sources.close()
            self.file_sink.close()
            if self.metrics_server is not None:
                self.metrics_server.shutdown()
        return {**self.summary(), "seconds": time.perf_counter() - started}

    def _request_stop(self, _signum, _frame) -> None:
        self._stop = True
        self.sessions.deadline.request_stop()   # a line stuck in a match stops too

    def _loop(self) -> None:
        options, sessions = self.options, self.sessions
        while not self._stop:
            lines = self.sources.read_batch(READ_LINES, timeout=self._wait())
            wall = time.time()
            if lines:
                sessions.add_lines(lines, wall)
                self._dirty = True
            if options.wall_timeout_s is not None:
                sessions.close_wall_idle(wall, options.wall_timeout_s)
            exhausted = self.sources.exhausted
            if exhausted:
                sessions.close_all()
            self._take_closed(wall)
            if self._flush_due(wall, exhausted):
                self._flush()
            self._report(time.monotonic())
            if exhausted:
                return

    def _wait(self) -> float:
        """How long a read may wait for lines: less when a batch is about to be due."""
        if not self.pending:
            return self.options.poll_s
        waited = time.time() - self.pending[0].closed_at
        return max(0.0, min(self.options.poll_s, self.options.batch_wait_s - waited))

    def _take_closed(self, wall: float) -> None:
        clock = self.sessions.clock
        for session, reason in self.sessions.take_closed():
            self.pending.append(ClosedSession(
                self.next_id, session.key, session.events.tolist(),
                session.service or self.service, session.has_error, session.has_warn,
                clock.wall_of(session.first_line), wall, reason))
            self.next_id += 1
            self.metrics.closed.inc(reason=reason)

    def _flush_due(self, wall: float, exhausted: bool) -> bool:
        if self.pending:
            return (exhausted or len(self.pending) >= self.options.batch_size
                    or wall - self.pending[0].closed_at >= self.options.batch_wait_s)
        return exhausted or (self._dirty and time.monotonic() - self._last_checkpoint
                             >= self.options.checkpoint_interval_s)

    # -------------------------------------------------------------- scoring and output
    def _flush(self) -> None:
        """Score what closed, checkpoint with the records in the outbox, then emit them."""
        batch, self.pending = self.pending, []
        records = self._score(batch)
        emitted = records if self.options.all_sessions else [
            record for record in records if record["is_anomaly"]]
        self.outbox = emitted
        self._checkpoint()
        if emitted:
            self._deliver(emitted)
        self.outbox = []

    def _score(self, batch: list[ClosedSession]) -> list[dict]:
        if not batch:
            return []
        records: list[dict] = []
        size = self.options.batch_size
        for start in range(0, len(batch), size):     # one model call per micro-batch
            started = time.perf_counter()
            records += score_sessions(self.scorer, batch[start:start + size])
            self.metrics.score_seconds.observe(time.perf_counter() - started)
            self.metrics.batch.observe(len(batch[start:start + size]))
        for record, session in zip(records, batch):
            record.pop("file", None)            # a watched session comes from no day file
            record["session_key"] = session.session_key
            record["closed_by"] = session.closed_by
            record["first_seen"] = _iso(session.first_seen)
            record["closed_at"] = _iso(session.closed_at)
        alerts = sum(record["is_anomaly"] for record in records)
        self.counts["scored"] += len(records)
        self.counts["alerts"] += alerts
        self.metrics.scored.inc(len(records))
        self.metrics.alerts.inc(alerts)
        return records

    def _deliver(self, records: list[dict]) -> None:
        now = time.time()
        for record in records:
            record["latency_s"] = round(now - _epoch(record["closed_at"]), 6)
        written = self.file_sink.write(records)
        self.counts["emitted"] += written
        for record in records:
            self.metrics.latency.observe(record["latency_s"])
            self.stats.observe(record["latency_s"])
        if self.webhook is not None:
            for problem in self.webhook.post(records):
                self.metrics.webhook_failures.inc()
                self.log(f"warning: {problem}")

    def _checkpoint(self) -> None:
        state = dict(self.saved)
        state.update({
            "next_id": self.next_id, "sources": self.sources.positions(),
            "sessions": self.sessions.to_state(), "outbox": self.outbox,
            "counts": self.counts,
            "webhook_through": -1 if self.webhook is None else self.webhook.through})
        self.state.save(state, self.store)
        if self.webhook is not None:
            self.webhook.reset_journal()
        self._last_checkpoint, self._dirty = time.monotonic(), False
        self.metrics.checkpoints.inc()

    # -------------------------------------------------------------- reporting
    def _report(self, now: float) -> None:
        summary = self.sessions.summary
        self.metrics.lines.inc(summary.lines_read - self._lines_counted)
        self.metrics.bad_lines.inc(summary.bad_lines - self._bad_counted)
        self._lines_counted, self._bad_counted = summary.lines_read, summary.bad_lines
        self.metrics.open.set(self.sessions.n_open)
        self.metrics.templates.set(self.store.n_templates)
        if self.stats.due(now):
            lag = self.sources.lag_bytes()
            self.metrics.lag.set(lag)
            self.log(self.stats.line(now, lines=summary.lines_read, open_=self.sessions.n_open,
                                     scored=self.counts["scored"], alerts=self.counts["alerts"],
                                     lag_bytes=lag, templates=self.store.n_templates,
                                     bad=summary.bad_lines))

    def summary(self) -> dict:
        summary = self.sessions.summary
        return {"lines": summary.lines_read, "parsed": summary.lines_parsed,
                "bad_lines": summary.bad_lines, "bad_examples": [str(bad) for bad in
                                                                 summary.bad_examples],
                "lines_without_key": summary.lines_without_key,
                "open_sessions": self.sessions.n_open, "closed": dict(self.sessions.counts),
                "scored": self.counts["scored"], "alerts": self.counts["alerts"],
                "emitted": self.counts["emitted"], "templates": self.store.n_templates,
                "new_templates": self.store.n_templates - self.saved["training_templates"],
                "webhook_failures": 0 if self.webhook is None else self.webhook.failures}


def _end_regex(pattern: str | None, group_by: str) -> re.Pattern | None:
    if pattern is None:
        return None
    if group_by != "key":
        raise RadarError("--end-regex closes key sessions; time windows close by themselves "
                         "(drop --end-regex or use --group-by key)")
    return compile_regex(pattern, "--end-regex")
