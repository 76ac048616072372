"""Online sessions: raw lines in, closed sessions out, with ``radar ingest``'s own code.

Each line goes through ingest's line handling (format regex, timestamp, session key,
Drain3 template, :mod:`radar.ingest.grouping`), so a watched session holds the same
event ids and lines a batch ``radar ingest`` of the same log would give it. On top of
ingest's closes (end of input, ``--session-timeout`` in log time, the open-session
cap, windows passing), a session also closes on an end-marker line, after a
wall-clock idle time (for quiet streams, whose log clock stops), or when it reaches
an event cap. Open sessions, counters and the line clock round-trip through plain
JSON (:meth:`OnlineSessions.to_state`) for the checkpoint.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections import OrderedDict
from pathlib import Path

from radar.deadline import LineDeadline
from radar.ingest import IngestSummary, _Reader
from radar.ingest.grouping import KeyGrouper, Session
from radar.ingest.inputs import BadLine, snippet

SESSION_FIELDS = ("key", "day", "service", "n_lines", "has_error", "has_warn", "alert",
                  "first_line", "last_line", "last_ts", "logs")


class LineClock:
    """When (wall clock) each line number was read, kept as one mark per read batch."""

    def __init__(self, marks: list | None = None):
        self.numbers = array("q", [int(m[0]) for m in marks or ()])
        self.times = array("d", [float(m[1]) for m in marks or ()])

    def mark(self, next_number: int, wall: float) -> None:
        """Lines numbered from ``next_number`` on are read at ``wall``."""
        if self.numbers and self.numbers[-1] == next_number:
            self.times[-1] = wall
            return
        self.numbers.append(next_number)
        self.times.append(wall)

    def wall_of(self, number: int) -> float:
        index = bisect_right(self.numbers, number) - 1
        return self.times[max(index, 0)] if self.times else 0.0

    def prune(self, oldest_number: int) -> None:
        """Forget marks no line from ``oldest_number`` on needs."""
        keep = max(bisect_right(self.numbers, oldest_number) - 1, 0)
        del self.numbers[:keep]
        del self.times[:keep]

    def to_state(self) -> list:
        return [[n, t] for n, t in zip(self.numbers, self.times)]


class _Collector:
    """What ingest's line loop writes closed sessions to (instead of a day file)."""

    def __init__(self):
        self.closed: list[Session] = []

    def write(self, session: Session) -> None:
        self.closed.append(session)


class OnlineSessions:
    """Ingest's line loop held open: feed lines, take the sessions that closed.

    ``closed`` collects ``(session, closed_by)`` pairs; the caller takes them with
    :meth:`take_closed`.
    """

    def __init__(self, plan, store, *, end_regex: re.Pattern | None = None,
                 max_events: int | None = None):
        self.plan, self.store = plan, store
        self._collector = _Collector()
        self.summary = IngestSummary(Path("-"), plan.fmt.name, plan.spec.group_by)
        # the per-line time limit on the user's patterns: add_lines names each line,
        # whoever feeds lines arms it (``with sessions.deadline:``, as the watcher does)
        self.deadline = LineDeadline(options="--format, --key-regex or --end-regex")
        self._reader = _Reader(plan, store, self._collector, self.summary, self.deadline)
        self.grouper = self._reader.grouper
        self.keyed = isinstance(self.grouper, KeyGrouper)
        self.end_regex, self.max_events = end_regex, max_events
        self.clock = LineClock()
        self.closed: list[tuple[Session, str]] = []
        self.counts = {"end_marker": 0, "idle": 0, "open_cap": 0, "events_cap": 0,
                       "wall_idle": 0, "window": 0, "end_of_input": 0}

    @property
    def n_open(self) -> int:
        return len(self.grouper.open)

    @property
    def next_number(self) -> int:
        return self._reader.number + 1

    def add_lines(self, lines: list[tuple[str, int, str]], wall: float) -> None:
        """Feed ``(source name, line number in it, text)`` lines read at ``wall``."""
        self.clock.mark(self.next_number, wall)
        reader, summary, end = self._reader, self.summary, self.end_regex
        check = self.keyed and (end is not None or self.max_events is not None)
        summary.lines_read += len(lines)
        deadline = self.deadline
        try:
            for source, number, text in lines:
                deadline.path, deadline.number = source, number
                before = reader.number
                problem = reader._read_line(text)
                if problem is not None:
                    summary.add_bad(BadLine(source, number, problem, snippet(text)))
                elif check and reader.number != before:
                    self._close_touched(reader.number, end is not None and end.search(text))
                if self._collector.closed:
                    self._label_ingest_closes()
        finally:
            deadline.path = ""
        if not self.keyed and self.max_events is not None:
            self._close_full_windows()

    def _label_ingest_closes(self) -> None:
        """Name why ingest's grouper closed what it did (timeout, cap, window passed)."""
        grouper, spec = self.grouper, self.plan.spec
        for session in self._collector.closed:
            if not self.keyed:
                reason = "window"
            elif spec.timeout is not None and session.last_ts < grouper.now - spec.timeout:
                reason = "idle"
            else:
                reason = "open_cap"
            self._close(session, reason)
        self._collector.closed.clear()

    def _close(self, session: Session, reason: str) -> None:
        self.counts[reason] += 1
        self.closed.append((session, reason))

    def _close_touched(self, number: int, ended) -> None:
        """Close this line's key sessions on an end marker or at the event cap."""
        full = []
        for key, session in reversed(self.grouper.open.items()):
            if session.last_line != number:
                break
            if ended:
                full.append((key, "end_marker"))
            elif self.max_events is not None and len(session.events) >= self.max_events:
                full.append((key, "events_cap"))
        for key, reason in full:
            self._close(self.grouper.open.pop(key), reason)

    def _close_full_windows(self) -> None:
        full = [slot for slot, session in self.grouper.open.items()
                if len(session.events) >= self.max_events]
        for slot in full:
            self._close(self.grouper.open.pop(slot), "events_cap")

    def close_wall_idle(self, wall: float, timeout: float) -> None:
        """Close sessions whose last line was read more than ``timeout`` seconds ago."""
        horizon, open_ = wall - timeout, self.grouper.open
        idle = []
        for slot, session in open_.items():         # key sessions: least recent first
            if self.clock.wall_of(session.last_line) < horizon:
                idle.append(slot)
            elif self.keyed:
                break
        for slot in idle:
            self._close(open_.pop(slot), "wall_idle")

    def close_all(self) -> None:
        """End of input: every open session closes (ingest's order)."""
        for session in self.grouper.finish():
            self._close(session, "end_of_input")

    def take_closed(self) -> list[tuple[Session, str]]:
        closed, self.closed = self.closed, []
        return closed

    # -------------------------------------------------------------- checkpoint
    def to_state(self) -> dict:
        grouper = self.grouper
        open_ = grouper.open
        if open_:
            self.clock.prune(min(session.first_line for session in open_.values()))
        state = {"number": self._reader.number, "now": _finite(grouper.now),
                 "clock": self.clock.to_state(), "counts": dict(self.counts),
                 "open": [[_slot_state(slot), _session_state(s)] for slot, s in open_.items()],
                 "summary": {name: getattr(self.summary, name) for name in
                             ("lines_read", "lines_parsed", "bad_lines", "lines_without_key")}}
        if self.keyed:
            state["closed_early"] = grouper.n_closed_early
        else:
            state["duplicates"] = grouper.n_duplicates
            state["last_emitted"] = [[service, list(span)] for service, span
                                     in grouper._last_emitted.items()]
        return state

    def restore(self, state: dict) -> None:
        """Put back what :meth:`to_state` saved (a fresh instance, nothing fed yet)."""
        grouper = self.grouper
        self._reader.number = int(state["number"])
        grouper.now = float("-inf") if state["now"] is None else float(state["now"])
        self.clock = LineClock(state["clock"])
        self.counts.update(state["counts"])
        for name, value in state["summary"].items():
            setattr(self.summary, name, value)
        opened = OrderedDict() if self.keyed else {}
        for slot, saved in state["open"]:
            opened[_slot_of(slot)] = _session_of(saved)
        grouper.open = opened
        if self.keyed:
            grouper.n_closed_early = int(state["closed_early"])
        else:
            grouper.n_duplicates = int(state["duplicates"])
            grouper._last_emitted = {service: tuple(span)
                                     for service, span in state["last_emitted"]}


def _finite(value: float) -> float | None:
    return None if value == float("-inf") else value


def _slot_state(slot):
    return list(slot) if isinstance(slot, tuple) else slot


def _slot_of(saved):
    return tuple(saved) if isinstance(saved, list) else saved


def _session_state(session: Session) -> dict:
    state = {name: getattr(session, name) for name in SESSION_FIELDS}
    state["events"] = session.events.tolist()
    return state


def _session_of(state: dict) -> Session:
    session = Session.__new__(Session)
    for name in SESSION_FIELDS:
        setattr(session, name, state[name])
    session.events = array("i", state["events"])
    return session
