"""A prepared day held in memory: sessions that never went through the cache.

:class:`MemoryDay` has the interface :class:`~radar.data.dataset.SessionCorpus` reads from
a :class:`~radar.data.cache.PreparedDay` (``n_sessions``, ``services``, ``service``,
``flags``, ``lengths``, ``offsets``, ``events``, ``session_ids``, ``session_keys`` and the
very same ``gather``), so sessions built in memory — one HTTP request's
(:mod:`radar.serve`), or corrupted copies of held-out sessions (:mod:`radar.quality`) —
are scored by exactly the code ``radar detect`` runs on a day file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from radar.data.cache import ERROR_BIT, WARN_BIT, PreparedDay


class MemoryDay:
    """A prepared day built from in-memory event sequences instead of a cache."""

    gather = PreparedDay.gather          # the same gather-and-pad radar detect uses

    def __init__(self, sequences: Sequence[Sequence[int]], services: Sequence[str], *,
                 has_error: Sequence[bool] | None = None,
                 has_warn: Sequence[bool] | None = None,
                 session_ids: Sequence[int | None] | None = None,
                 session_keys: Sequence[str | None] | None = None) -> None:
        """One session per item of ``sequences`` (raw event ids), of service ``services[i]``.

        Flags default to False, ids to the position (0, 1, ...), keys to None.
        """
        n = len(sequences)
        for name, column in (("services", services), ("has_error", has_error),
                             ("has_warn", has_warn), ("session_ids", session_ids),
                             ("session_keys", session_keys)):
            if column is not None and len(column) != n:
                raise ValueError(f"{name} has {len(column)} items for {n} sequences")
        self.n_sessions = n
        self.lengths = np.fromiter(map(len, sequences), np.int64, n)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(self.lengths, out=self.offsets[1:])
        self.events = np.fromiter(chain.from_iterable(sequences), np.int32,
                                  int(self.offsets[-1]))
        index: dict[str, int] = {}
        self.service = np.fromiter((index.setdefault(name, len(index)) for name in services),
                                   np.int64, n)
        self.services = list(index)
        error = np.zeros(n, bool) if has_error is None else np.asarray(has_error, bool)
        warn = np.zeros(n, bool) if has_warn is None else np.asarray(has_warn, bool)
        self.flags = (ERROR_BIT * error + WARN_BIT * warn).astype(np.uint8)
        # The ids as given (None where the caller had none), and as the int64 column a
        # day's results carry (0 for None).
        self.given_ids = list(range(n)) if session_ids is None else list(session_ids)
        self.session_ids = np.array([0 if i is None else i for i in self.given_ids],
                                    dtype=np.int64)
        # Always a list, so every result has session_key (null when not given); a day
        # file's results only have it when some session of that file has one.
        self.session_keys = [None] * n if session_keys is None else list(session_keys)

    @classmethod
    def from_sessions(cls, sessions: Sequence[Any]) -> MemoryDay:
        """From mappings or objects with a session's fields: ``event_sequence`` (required),
        ``service_name`` (default ``"unknown"``), ``has_error``, ``has_warn`` (False),
        ``session_id`` and ``session_key`` (None: results carry the id 0 and echo None)."""
        rows = [_fields(s, i) for i, s in enumerate(sessions)]
        return cls([row[0] for row in rows], [row[1] for row in rows],
                   has_error=[row[2] for row in rows], has_warn=[row[3] for row in rows],
                   session_ids=[row[4] for row in rows],
                   session_keys=[row[5] for row in rows])


def _fields(session: Any, index: int) -> tuple:
    """(event_sequence, service_name, has_error, has_warn, session_id, session_key)."""
    if isinstance(session, Mapping):
        get = session.get
    else:
        def get(key: str, default: Any = None) -> Any:
            return getattr(session, key, default)
    sequence = get("event_sequence")
    if sequence is None:
        raise ValueError(f"session {index} has no event_sequence (a list of event ids)")
    return (sequence, get("service_name") or "unknown", bool(get("has_error", False)),
            bool(get("has_warn", False)), get("session_id"), get("session_key"))
