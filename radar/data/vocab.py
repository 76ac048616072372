"""Event vocabulary: maps raw event (template) ids to model indices with reserved specials.

Index 0 is padding; CLS (LogBERT's DIST token), SEP, MASK and UNK follow; event
ids seen in training get indices from :data:`FIRST_EVENT` on. Ids never seen in
training map to UNK, itself a strong anomaly signal. Mapping is a vectorised
look-up table, so a batch converts without Python loops.
"""

from __future__ import annotations

import numpy as np

PAD, CLS, SEP, MASK, UNK = 0, 1, 2, 3, 4
SPECIAL_NAMES = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
FIRST_EVENT = len(SPECIAL_NAMES)


class EventVocab:
    """Raw event id -> model index, built from the events of the training data."""

    def __init__(self, event_ids: np.ndarray | list[int]):
        ids = np.unique(np.asarray(event_ids, dtype=np.int64))
        if ids.size and ids[0] < 0:
            raise ValueError(f"event ids must be >= 0, found {int(ids[0])}")
        self.event_ids = ids                                  # sorted raw ids
        self._table = np.full(int(ids[-1]) + 1 if ids.size else 1, UNK, dtype=np.int64)
        self._table[ids] = np.arange(FIRST_EVENT, FIRST_EVENT + ids.size)

    def __len__(self) -> int:
        """Total size including the specials (the model's embedding rows)."""
        return FIRST_EVENT + int(self.event_ids.size)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Map raw ids (any shape) to indices; out-of-range or unseen ids become UNK."""
        raw = np.asarray(raw, dtype=np.int64)
        inside = (raw >= 0) & (raw < self._table.size)
        return np.where(inside, self._table[np.clip(raw, 0, self._table.size - 1)], UNK)

    def decode(self, index: np.ndarray) -> np.ndarray:
        """Map model indices back to raw event ids; specials become -1 .. -5."""
        index = np.asarray(index, dtype=np.int64)
        is_event = index >= FIRST_EVENT
        raw = self.event_ids[np.clip(index - FIRST_EVENT, 0, max(self.event_ids.size - 1, 0))]
        return np.where(is_event, raw, -1 - index)

    def state_dict(self) -> dict:
        return {"event_ids": self.event_ids.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> EventVocab:
        return cls(state["event_ids"])
