"""Sessions from prepared days, seen as one indexable set of model-sized windows.

A session longer than the window is split into windows (stride = window, the
last one aligned to the session's end); each window is one training or scoring
item, and a session's score is the maximum over its windows. Indexing with an
array of item numbers returns a padded :class:`SessionBatch` through the cache's
vectorised gather, so batches are built at memory speed with no per-item Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from radar.data.cache import ERROR_BIT, WARN_BIT, PreparedDay
from radar.data.vocab import EventVocab


@dataclass
class SessionBatch:
    """A batch of sessions padded to its longest member (not to ``max_seq_length``).

    ``input_ids`` hold vocabulary indices (see :class:`radar.data.vocab.EventVocab`:
    0 is padding, unseen events are UNK) of the event sequence itself, without
    CLS/SEP; a detector that wants specials adds them.
    """

    input_ids: torch.Tensor        # (B, L) int64, padded with 0
    lengths: torch.Tensor          # (B,) int64, >= 1
    index: torch.Tensor            # (B,) int64, row in the dataset the batch came from
    service: torch.Tensor          # (B,) int64, service index (see dataset.services)
    has_error: torch.Tensor        # (B,) bool
    has_warn: torch.Tensor         # (B,) bool

    @property
    def attention_mask(self) -> torch.Tensor:
        """(B, L) bool, True on real positions."""
        positions = torch.arange(self.input_ids.shape[1], device=self.input_ids.device)
        return positions[None, :] < self.lengths[:, None]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @classmethod
    def from_lists(cls, sessions: list[list[int]]) -> SessionBatch:
        """A batch of vocabulary-index lists (service 0, no ERROR/WARN), for tests and demos."""
        width = max(len(s) for s in sessions)
        ids = torch.zeros(len(sessions), width, dtype=torch.long)
        for row, session in enumerate(sessions):
            ids[row, :len(session)] = torch.tensor(session)
        zeros = torch.zeros(len(sessions), dtype=torch.long)
        return cls(ids, torch.tensor([len(s) for s in sessions]), torch.arange(len(sessions)),
                   zeros, zeros.bool(), zeros.bool())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SessionBatch:
        return SessionBatch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                               for f in dataclasses.fields(self)})


def window_length(max_seq_length: int) -> int:
    """Events per model window: ``data.max_seq_length`` less the CLS and SEP positions."""
    return max(1, max_seq_length - 2)


def window_starts(length: int, window: int) -> list[int]:
    """Start offsets covering a session of ``length`` with windows of ``window`` events."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, window))
    starts.append(length - window)
    return starts


def row_slices(mask: np.ndarray, size: int) -> list[np.ndarray]:
    """``mask`` (one day's sessions) cut into masks of at most ``size`` consecutive
    sessions each, for work on a big day a bounded slice at a time."""
    if mask.size <= size:
        return [mask]
    rows = np.arange(mask.size)
    return [mask & (rows >= first) & (rows < first + size)
            for first in range(0, mask.size, size)]


@dataclass
class SessionTable:
    """One row per selected session (not per window)."""

    day: np.ndarray          # int32, index into corpus.days
    row: np.ndarray          # int64, row inside that day's cache
    service: np.ndarray      # int64, index into corpus.services
    flags: np.ndarray        # uint8, bit0 has_error, bit1 has_warn
    length: np.ndarray       # int64, events in the session


class SessionCorpus:
    """Selected sessions of several prepared days, windowed for a model."""

    def __init__(self, days: Sequence[PreparedDay], vocab: EventVocab, window: int,
                 row_masks: Sequence[np.ndarray | None] | None = None):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.days, self.vocab, self.window = list(days), vocab, window
        self.services = sorted({name for day in self.days for name in day.services})
        service_index = {name: i for i, name in enumerate(self.services)}
        parts = []
        for d, day in enumerate(self.days):
            mask = None if row_masks is None else row_masks[d]
            rows = np.arange(day.n_sessions) if mask is None else np.flatnonzero(mask)
            remap = np.array([service_index[name] for name in day.services] or [0],
                             dtype=np.int64)
            parts.append((np.full(rows.size, d, dtype=np.int32), rows,
                          remap[np.asarray(day.service)[rows].astype(np.int64)],
                          np.asarray(day.flags)[rows], day.lengths[rows]))
        cat = [np.concatenate(column) if parts else np.zeros(0) for column in zip(*parts)]
        self.sessions = SessionTable(*cat) if parts else SessionTable(
            np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64),
            np.zeros(0, np.uint8), np.zeros(0, np.int64))
        self._build_windows()

    def _build_windows(self) -> None:
        lengths = self.sessions.length
        n = lengths.size
        session = np.arange(n, dtype=np.int64)
        start = np.zeros(n, dtype=np.int64)
        long_rows = np.flatnonzero(lengths > self.window)
        if long_rows.size:   # rare: a Python loop over long sessions only
            extra_session, extra_start = [], []
            for i in long_rows:
                starts = window_starts(int(lengths[i]), self.window)[1:]
                extra_session.extend([i] * len(starts))
                extra_start.extend(starts)
            session = np.concatenate([session, np.asarray(extra_session, dtype=np.int64)])
            start = np.concatenate([start, np.asarray(extra_start, dtype=np.int64)])
            order = np.lexsort((start, session))
            session, start = session[order], start[order]
        self.window_session = session
        self.window_start = start
        self.window_length = np.minimum(lengths[session] - start, self.window)

    @property
    def n_sessions(self) -> int:
        return int(self.sessions.length.size)

    def __len__(self) -> int:
        return int(self.window_session.size)

    def __getitem__(self, items: np.ndarray | Sequence[int]) -> SessionBatch:
        items = np.asarray(items, dtype=np.int64)
        sessions = self.window_session[items]
        lengths = self.window_length[items]
        width = int(lengths.max()) if items.size else 0
        ids = np.zeros((items.size, width), dtype=np.int64)
        day_of = self.sessions.day[sessions]
        for d in np.unique(day_of):
            pick = np.flatnonzero(day_of == d)
            rows = self.sessions.row[sessions[pick]]
            raw, raw_len = self.days[d].gather(rows, self.window_start[items[pick]], self.window)
            ids[pick, :raw.shape[1]] = np.where(
                np.arange(raw.shape[1])[None, :] < raw_len[:, None], self.vocab.encode(raw), 0)
        flags = self.sessions.flags[sessions]
        return SessionBatch(
            input_ids=torch.from_numpy(ids),
            lengths=torch.from_numpy(lengths.astype(np.int64)),
            index=torch.from_numpy(items),
            service=torch.from_numpy(self.sessions.service[sessions].astype(np.int64)),
            has_error=torch.from_numpy((flags & ERROR_BIT) != 0),
            has_warn=torch.from_numpy((flags & WARN_BIT) != 0),
        )

    def original_positions(self, sessions: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Positions (m, k) in ``sessions`` as logged: the same, except in a day that reads
        its sessions with some events left out (radar/scoring/drift.py)."""
        day_of = self.sessions.day[sessions]
        for d in np.unique(day_of):
            day = self.days[d]
            if hasattr(day, "original_positions"):
                pick = day_of == d
                positions[pick] = day.original_positions(self.sessions.row[sessions[pick]],
                                                         positions[pick])
        return positions

    def padding_fraction(self, batches: Sequence[np.ndarray]) -> float:
        """Share of padded positions if these batches are padded to their longest item."""
        real = padded = 0
        for batch in batches:
            lengths = self.window_length[batch]
            real += int(lengths.sum())
            padded += int(lengths.max()) * lengths.size if lengths.size else 0
        return 1.0 - real / padded if padded else 0.0
