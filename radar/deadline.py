"""One time limit for every user-supplied regular expression, wherever it runs.

A pattern such as ``(a+)+$`` backtracks exponentially on some lines: one line can take
hours. Every command that runs a user's pattern over input lines (``radar ingest`` and
``radar watch`` with ``--format``, ``--key-regex``, ``--end-regex`` and the template
state's masking; ``radar source match --format``) does it one line at a time inside a
:class:`LineDeadline`: it sets ``deadline.path`` and ``deadline.number`` per line, and
the deadline checks that the pair moves on. A line that has not moved on for
``seconds`` raises :class:`SlowLine`. Per line this costs two attribute stores; the
regex package's per-call timeouts would slow every match.

In the main thread (where every command reads its lines) an interval timer
(``SIGALRM``) does the checking: Python's ``re`` runs signal handlers while it
matches, so the tick can raise out of a stuck match. The same tick honours a stop
request (``radar watch`` on SIGTERM/SIGINT, :meth:`LineDeadline.request_stop`): a line
stuck for a tick then raises :class:`StopWhileMatching`, so the process stops within
a tick instead of at the limit.

Outside the main thread (and where there is no ``SIGALRM``) no signal can end a
running match, and nothing else can: a match holds the interpreter lock, so no other
Python thread runs either. There a watchdog thread ticks instead: when a line passes
the limit while the lock is free it prints the same one-line error and ends the
process with exit status 1; and on each tick it re-arms :mod:`faulthandler`'s timer,
whose C thread needs no lock, so a match that never lets go ends the process (exit
status 1, with where each thread was) a tick or two after the limit rather than
spin for hours.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading

from radar.errors import RadarError

LINE_SECONDS = 10.0
MAX_TICK_SECONDS = 0.5      # how late a stop request may be honoured


class SlowLine(RadarError):
    """One line took longer than the limit (almost always a backtracking regex)."""


class StopWhileMatching(Exception):
    """A stop was requested while a line was stuck (see :meth:`LineDeadline.request_stop`)."""


class LineDeadline:
    """Context manager: set ``deadline.path`` per file and ``deadline.number`` per line;
    ``path = ""`` pauses the limit (work after the last line is not a line's).
    ``options`` names the user's patterns in the error."""

    def __init__(self, seconds: float | None = None, *,
                 options: str = "--format or --key-regex"):
        self.seconds = LINE_SECONDS if seconds is None else seconds
        self.tick = min(max(self.seconds / 4, 0.01), MAX_TICK_SECONDS)
        self.options = options
        self.path: str = ""
        self.number = 0
        self._seen: tuple[str, int] | None = None
        self._stalled = 0.0
        self._stop_requested = False
        self._timer = False
        self._watchdog: threading.Thread | None = None
        self._done = threading.Event()

    def __enter__(self):
        self._seen, self._stalled, self._stop_requested = None, 0.0, False
        if (hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread()):
            self._previous = signal.signal(signal.SIGALRM, self._on_tick)
            signal.setitimer(signal.ITIMER_REAL, self.tick, self.tick)
            self._timer = True
        else:
            self._done.clear()
            self._arm_backstop()            # before the first line: a match may never let go
            self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                              name="radar-line-deadline")
            self._watchdog.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self._timer:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._timer = False
        if self._watchdog is not None:
            self._done.set()
            self._watchdog.join()
            self._watchdog = None
        return False

    def request_stop(self) -> None:
        """Stop within a tick if a line is stuck (called from a SIGTERM handler)."""
        self._stop_requested = True

    def message(self) -> str:
        return (f"{self.path}:{self.number}: reading this line took over {self.seconds:g} s; "
                f"a {self.options} with nested repeats such as (a+)+ or (\\w+\\s?)* "
                "backtracks without end on some lines: rewrite it without the nesting")

    def _verdict(self) -> str | None:
        """One tick: None while lines move on, else "stop" or "slow"."""
        line = (self.path, self.number)
        if not self.path or line != self._seen:     # between files, or moving on
            self._seen, self._stalled = line, 0.0
            return None
        self._stalled += self.tick
        if self._stop_requested:
            return "stop"
        return "slow" if self._stalled >= self.seconds else None

    def _on_tick(self, signum, frame) -> None:
        verdict = self._verdict()
        if verdict is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        if verdict == "stop":
            raise StopWhileMatching(f"{self.path}:{self.number}")
        raise SlowLine(self.message())

    def _arm_backstop(self) -> None:
        faulthandler.dump_traceback_later(self.seconds + 2 * self.tick, exit=True,
                                          file=sys.__stderr__)

    def _watch(self) -> None:
        try:
            while not self._done.wait(self.tick):
                if self.path:               # a line in progress: only a line may be ended
                    self._arm_backstop()
                else:
                    faulthandler.cancel_dump_traceback_later()
                if self._verdict() == "slow":
                    sys.__stderr__.write(f"Error: {self.message()}\n")
                    sys.__stderr__.flush()
                    os._exit(1)
        finally:
            faulthandler.cancel_dump_traceback_later()
