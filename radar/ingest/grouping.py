"""Session grouping: lines into sessions by a key (block id, request id) or by time window.

A grouper takes parsed lines in log order and hands back the sessions that closed.
Key sessions cannot know when they end: they stay open until the end of input, until
they have been idle longer than a timeout (log time), or until more than
``max_open`` sessions are open (the least recently active one closes). Window
sessions close once the log's clock has passed their end by one more window, so
lines up to a window late still land in the right one. Memory is bounded either way:
``original_logs`` keeps at most ``max_lines`` lines per session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from array import array
from collections import OrderedDict
from collections.abc import Iterator

GROUP_BY = ("key", "window", "sliding")
_NONE: tuple = ()


@dataclasses.dataclass(frozen=True)
class GroupingSpec:
    """How lines become sessions (see the module docstring)."""

    group_by: str = "key"
    window: int = 300           # seconds (window and sliding)
    step: int = 60              # seconds between sliding windows
    timeout: float | None = None    # seconds of log time a key session may stay idle
    max_open: int = 100_000     # key sessions open at once
    max_lines: int = 200        # original_logs kept per session


class LogLine:
    """One parsed line: what a session needs from it."""

    __slots__ = ("alert", "day", "error", "event", "number", "raw", "service", "ts", "warn")

    def __init__(self, number, ts, day, event, raw, error, warn, alert, service):
        self.number, self.ts, self.day, self.event, self.raw = number, ts, day, event, raw
        self.error, self.warn, self.alert, self.service = error, warn, alert, service


class Session:
    """An open (then closed) session: its events, kept lines and flags."""

    __slots__ = ("alert", "day", "events", "first_line", "has_error", "has_warn", "key",
                 "last_line", "last_ts", "logs", "n_lines", "service")

    def __init__(self, key: str, line: LogLine):
        self.key, self.day, self.service = key, line.day, line.service
        self.events = array("i")
        self.logs: list[str] = []
        self.n_lines = 0
        self.has_error = self.has_warn = self.alert = False
        self.first_line = line.number
        self.last_line, self.last_ts = line.number, line.ts

    def add(self, line: LogLine, max_lines: int) -> None:
        self.events.append(line.event)
        if self.n_lines < max_lines:
            self.logs.append(line.raw)
        self.n_lines += 1
        self.has_error = self.has_error or line.error
        self.has_warn = self.has_warn or line.warn
        self.alert = self.alert or line.alert
        self.last_line, self.last_ts = line.number, line.ts


class KeyGrouper:
    """One session per key; a line with several keys joins each of their sessions."""

    def __init__(self, spec: GroupingSpec):
        self.spec = spec
        self.open: OrderedDict[str, Session] = OrderedDict()   # least recently active first
        self.now = float("-inf")
        self.n_closed_early = 0         # closed by the timeout or the open-session cap

    def add(self, line: LogLine, keys) -> list[Session] | tuple:
        open_, max_lines = self.open, self.spec.max_lines
        for key in keys:
            session = open_.get(key)
            if session is None:
                session = open_[key] = Session(key, line)
            else:
                open_.move_to_end(key)
            session.add(line, max_lines)
        self.now = max(self.now, line.ts)
        if len(open_) <= self.spec.max_open and self.spec.timeout is None:
            return _NONE
        return self._close_early()

    def _close_early(self) -> list[Session]:
        closed = []
        if self.spec.timeout is not None:
            horizon = self.now - self.spec.timeout
            while self.open and next(iter(self.open.values())).last_ts < horizon:
                closed.append(self.open.popitem(last=False)[1])
        while len(self.open) > self.spec.max_open:
            closed.append(self.open.popitem(last=False)[1])
        self.n_closed_early += len(closed)
        return closed

    def finish(self) -> Iterator[Session]:
        """The sessions still open, in the order they started."""
        remaining = sorted(self.open.values(), key=lambda session: session.first_line)
        self.open.clear()
        yield from remaining


class WindowGrouper:
    """Time windows ``[start, start + window)``: fixed (step = window) or sliding.

    Starts are multiples of the step (in the log's clock), so windows line up with
    minutes and hours. With a ``service`` group in the format, each service gets its own
    windows. A sliding window holding exactly the lines of the window before it (a quiet
    spell) is dropped, as LogBERT's and loglizer's sliding windows do.
    """

    def __init__(self, spec: GroupingSpec):
        self.spec = spec
        self.window = spec.window
        self.step = spec.window if spec.group_by == "window" else spec.step
        self.open: dict[tuple, Session] = {}
        self.now = float("-inf")
        self.n_duplicates = 0
        self._last_emitted: dict[str | None, tuple] = {}

    def add(self, line: LogLine, keys=None) -> list[Session] | tuple:
        step, open_, max_lines = self.step, self.open, self.spec.max_lines
        last = int(line.ts // step)
        first = last if step == self.window else int((line.ts - self.window) // step) + 1
        for index in range(first, last + 1):
            slot = (line.service, index)
            session = open_.get(slot)
            if session is None:
                session = open_[slot] = Session(_window_key(line.service, index * step), line)
            session.add(line, max_lines)
        if line.ts > self.now:
            self.now = line.ts
            return self._close_until(self.now - 2 * self.window)
        return _NONE

    def _close_until(self, horizon: float) -> list[Session]:
        closed = []
        while self.open:
            slot = next(iter(self.open))
            if slot[1] * self.step > horizon:
                break
            self._emit(self.open.pop(slot), closed)
        return closed

    def _emit(self, session: Session, closed: list) -> None:
        span = (session.first_line, session.last_line, session.n_lines)
        if self.step != self.window and self._last_emitted.get(session.service) == span:
            self.n_duplicates += 1
            return
        self._last_emitted[session.service] = span
        closed.append(session)

    def finish(self) -> Iterator[Session]:
        closed: list[Session] = []
        for slot in sorted(self.open, key=lambda slot: (slot[1], slot[0] or "")):
            self._emit(self.open.pop(slot), closed)
        yield from closed


def _window_key(service: str | None, start: int) -> str:
    text = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{service}/{text}" if service else text


def make_grouper(spec: GroupingSpec) -> KeyGrouper | WindowGrouper:
    return KeyGrouper(spec) if spec.group_by == "key" else WindowGrouper(spec)
