"""A release is not an outbreak: new log lines that many sessions of a day carry.

An event never seen in training maps to UNK, the strongest anomaly signal a detector
has. When a release adds a benign log line, every session that logs it would be
flagged for it alone. :func:`find_drift` tells the two apart by how common the new
event is on the day being scored: an unseen event carried by at least
``detection.drift_share`` of the day's sessions *from its first appearance on* (and
by at least ``MIN_SESSIONS`` of them) is drift. It is reported (which event, since
which session, how many sessions) and the day is scored with that event left out of
its sessions (:class:`DriftFilteredDay`), so a session is flagged only if it is
anomalous without it. A rare unseen event stays what it was: an anomaly signal.

Only whole days are judged (``radar run``, ``radar detect``); the micro-batches of
``radar serve`` and ``radar watch`` are too small to tell a release from an outbreak.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from radar.data.vocab import UNK, EventVocab

# Fewer sessions than this never make an event drift, whatever their share.
MIN_SESSIONS = 20


@dataclass
class DriftEvent:
    event_id: int           # raw event id, never seen in training
    file: str               # the day file
    sessions: int           # sessions of that day that log it
    share: float            # of the day's sessions from its first appearance on
    first_session_id: int   # the first session (file order) that logs it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"drift: event {self.event_id}, never seen in training, is logged by "
                f"{self.sessions:,} sessions of {self.file} ({self.share:.1%} of them from "
                f"session {self.first_session_id} on): most likely a new log line, not an "
                "anomaly; that day is scored without it")


def session_of_events(lengths: np.ndarray) -> np.ndarray:
    """Row of the session each event belongs to, for events concatenated by session."""
    return np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)


def find_drift(day, vocab: EventVocab, file: str, min_share: float) -> list[DriftEvent]:
    """The unseen events of a prepared ``day`` common enough to be drift (module doc)."""
    if min_share <= 0 or day.n_sessions == 0:
        return []
    events = np.asarray(day.events)
    unseen = np.flatnonzero(vocab.encode(events) == UNK)
    if unseen.size == 0:
        return []
    rows = session_of_events(day.lengths)[unseen]
    pairs = np.unique(np.stack([events[unseen].astype(np.int64), rows], axis=1), axis=0)
    ids, first, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    found = []
    for event, start, count in zip(ids, first, counts):
        first_row = int(pairs[start, 1])            # pairs are sorted by (id, row)
        share = count / (day.n_sessions - first_row)
        if count >= MIN_SESSIONS and share >= min_share:
            found.append(DriftEvent(int(event), file, int(count), float(share),
                                    int(day.session_ids[first_row])))
    return found


class DriftFilteredDay:
    """A prepared day whose sessions read as if ``event_ids`` had never been logged.

    Everything but the events (ids, services, flags, keys) is the day's own. Sessions
    that consist of drift events only keep them (a session needs one event to score).
    """

    def __init__(self, day, event_ids: list[int]):
        self.day = day
        self.event_ids = np.asarray(sorted(event_ids), dtype=np.int64)
        dropped = np.isin(np.asarray(day.events), self.event_ids)
        per_session = np.bincount(session_of_events(day.lengths)[dropped],
                                  minlength=day.n_sessions)
        left = day.lengths - per_session
        self.kept_all = left == 0                 # nothing would be left: keep them all
        self.lengths = np.where(self.kept_all, day.lengths, left).astype(np.int64)

    def __getattr__(self, name: str):
        return getattr(self.day, name)

    def _kept(self, rows: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """The sessions ``rows`` as logged (one gather, padded) and, per row, the
        positions of the events it keeps."""
        full, _ = self.day.gather(rows, None, int(self.day.lengths[rows].max())
                                  if rows.size else 0)
        kept = []
        for i, row in enumerate(rows):
            events = full[i, :int(self.day.lengths[row])]
            kept.append(np.arange(events.size) if self.kept_all[row] else
                        np.flatnonzero(~np.isin(events, self.event_ids)))
        return full, kept

    def gather(self, rows, starts=None, max_len: int = 512, pad: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`PreparedDay.gather` over the filtered sessions."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = np.zeros(rows.size, dtype=np.int64) if starts is None else \
            np.clip(np.asarray(starts, dtype=np.int64), 0, self.lengths[rows])
        take = np.minimum(self.lengths[rows] - starts, max_len)
        out = np.full((rows.size, int(take.max()) if rows.size else 0), pad, dtype=np.int64)
        full, kept = self._kept(rows)
        for i, positions in enumerate(kept):
            out[i, :take[i]] = full[i, positions[starts[i]:starts[i] + take[i]]]
        return out, take

    def original_positions(self, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Map positions in the filtered sessions ``rows`` (shape (m, k), NaN where none)
        back to positions in the sessions as logged; the end of a session stays its end."""
        out = positions.copy()
        rows = np.asarray(rows, dtype=np.int64)
        _, kept = self._kept(rows)
        for i, (row, logged) in enumerate(zip(rows, kept)):
            for j, value in enumerate(positions[i]):
                if np.isnan(value):
                    continue
                p = int(value)
                out[i, j] = logged[p] if p < logged.size else self.day.lengths[row]
        return out
