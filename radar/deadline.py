"""A time limit per log line, so a catastrophic ``--format`` or ``--key-regex`` stops ingest.

A pattern such as ``(a+)+$`` backtracks exponentially on some lines: one line can take
hours. Python's ``re`` checks for signals while it matches, so an interval timer
(``SIGALRM``) can end it without slowing the normal path: each tick only compares the
line counter with the one it saw last time, and a line that has not moved on for
``seconds`` raises :class:`SlowLine`. The regex package's per-call timeouts would cost
every line; this costs nothing per line but an integer store.

Only the main thread receives signals, and Windows has no ``SIGALRM``: elsewhere the
limit is simply not armed.
"""

from __future__ import annotations

import signal
import threading

from radar.errors import RadarError

LINE_SECONDS = 10.0


class SlowLine(RadarError):
    """One line took longer than the limit (almost always a backtracking regex)."""


class LineDeadline:
    """Context manager: set ``deadline.path`` per file and ``deadline.number`` per line;
    ``path = ""`` pauses the limit (work after the last line is not a line's)."""

    def __init__(self, seconds: float | None = None):
        self.seconds = LINE_SECONDS if seconds is None else seconds
        self.tick = max(self.seconds / 4, 0.01)
        self.path: str = ""
        self.number = 0
        self._seen: tuple[str, int] | None = None
        self._stalled = 0.0
        self._armed = False

    def __enter__(self):
        if (hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            self._previous = signal.signal(signal.SIGALRM, self._on_tick)
            signal.setitimer(signal.ITIMER_REAL, self.tick, self.tick)
            self._armed = True
        return self

    def __exit__(self, *exc) -> bool:
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._armed = False
        return False

    def _on_tick(self, signum, frame) -> None:
        line = (self.path, self.number)
        if not self.path or line != self._seen:     # between files, or moving on
            self._seen, self._stalled = line, 0.0
            return
        self._stalled += self.tick
        if self._stalled >= self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            raise SlowLine(
                f"{line[0]}:{line[1]}: reading this line took over {self.seconds:g} s; a "
                "--format or --key-regex with nested repeats such as (a+)+ or (\\w+\\s?)* "
                "backtracks without end on some lines: rewrite it without the nesting")
