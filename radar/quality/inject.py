"""Injected recall: how often the trained detectors catch corruptions operators recognise.

Without a label file nothing says which real sessions were anomalous, so recall is
estimated on the user's own data instead: held-out sessions of the training days are
copied and each copy is corrupted in one recognisable way (:data:`KINDS`: a step
missing, two steps out of order, a step repeated, the session cut short, an event from
elsewhere), then the copies and the untouched sessions are scored with the run's
detectors. Recall is the share of copies flagged, per kind and per service, beside
the false-alarm rate on the untouched sessions. :data:`CAVEAT` says what this does and
does not measure; every result carries it.

The copies are built in memory (:class:`~radar.data.memory.MemoryDay`) and windowed with
the run's vocabulary and window (:class:`~radar.data.dataset.SessionCorpus`), so they are
scored by the code ``radar detect`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from radar.data.cache import ERROR_BIT, WARN_BIT
from radar.data.dataset import SessionCorpus
from radar.data.memory import MemoryDay
from radar.errors import RadarError

KINDS = ("drop", "swap", "repeat", "truncate", "foreign")
# The shortest session each kind corrupts: drop removes an interior event (not the first
# or last), truncate keeps 30-70% and at least one event but not all of them.
MIN_LENGTH = {"drop": 3, "swap": 2, "repeat": 2, "truncate": 4, "foreign": 2}
TRUNCATE_KEEP = (0.3, 0.7)
REPEAT_RUN = (2, 4)             # the repeated event then occurs 2-4 times in a row
RARE_SHARE = 0.1                # the "rare end" of the pool: its least frequent 10% of ids
DEFAULT_SESSIONS = 1000

CAVEAT = (
    "Injected recall is the share of synthetic corruptions of held-out sessions of the "
    "training days (an interior event dropped, two adjacent events swapped, an event "
    "repeated, the session cut at 30-70% of its length, an event inserted from another "
    "service or the rare end of the event pool) that the detectors flag; only copies of "
    "sessions the detectors did not flag untouched count. It measures whether the "
    "detectors notice these changes to event sequences on your data. It does not measure "
    "recall on your real failures: real incidents may change timing, parameters or log "
    "text that event ids do not show, log no unusual event at all, or resemble these "
    "corruptions only loosely. Measured against ground truth (generated days, four-"
    "detector ensemble, 3 seeds a rate, docs/results.md), the overall figure was "
    "0.10-0.15 below the true recall at a 1% anomaly rate, -0.06 to +0.02 off at 5% and "
    "0.02-0.10 above at 10%: a rough guide of about +-0.15, not a recall. A corruption that makes a session look like another "
    "normal session (a truncation at a natural end, a repeat of a step that often "
    "repeats) counts as missed, so some kinds cannot reach 1.0 "
    "(n_same_as_untouched counts copies identical to an untouched sampled session). The "
    "false-alarm rate is on the untouched held-out sessions; when the threshold was "
    "calibrated on those same sessions it equals the calibration target by construction "
    "and is no independent evidence.")


@dataclass
class EventPool:
    """Which event ids each service's sessions hold, and which ids are rare overall."""

    by_service: dict[str, set[int]]
    rare: np.ndarray                       # the least frequent RARE_SHARE of ids

    @classmethod
    def from_sessions(cls, sequences: Sequence[np.ndarray], services: Sequence[str], *,
                      known: np.ndarray | None = None) -> EventPool:
        """The pool of ``sequences``; with ``known``, only those ids (the run's vocabulary:
        an id the detectors never saw would be an unseen event, caught trivially)."""
        by_service: dict[str, set[int]] = {}
        for sequence, service in zip(sequences, services):
            by_service.setdefault(service, set()).update(np.asarray(sequence).tolist())
        events = np.concatenate([np.asarray(s, np.int64) for s in sequences] or
                                [np.zeros(0, np.int64)])
        if known is not None:
            keep = set(np.asarray(known).tolist())
            by_service = {name: ids & keep for name, ids in by_service.items()}
            events = events[np.isin(events, np.asarray(known))]
        ids, counts = np.unique(events, return_counts=True)
        order = np.argsort(counts, kind="stable")
        rare = np.sort(ids[order[:max(1, int(np.ceil(RARE_SHARE * ids.size)))]])
        return cls(by_service, rare)

    def foreign_to(self, service: str, session: np.ndarray) -> np.ndarray:
        """Ids seen in other services' sessions but never in ``service``'s; when there are
        none, the rare end of the pool; never an id ``session`` already holds."""
        own = self.by_service.get(service, set())
        held = set(np.asarray(session).tolist())
        others = set().union(*(ids for name, ids in self.by_service.items() if name != service))
        candidates = sorted(others - own - held)
        if not candidates:
            candidates = sorted(set(self.rare.tolist()) - held)
        return np.asarray(candidates, dtype=np.int64)


def _drop(seq, rng, pool, service):
    return np.delete(seq, rng.integers(1, seq.size - 1))


def _swap(seq, rng, pool, service):
    pairs = np.flatnonzero(seq[:-1] != seq[1:])
    if not pairs.size:
        return None
    at = int(rng.choice(pairs))
    out = seq.copy()
    out[at], out[at + 1] = seq[at + 1], seq[at]
    return out


def _repeat(seq, rng, pool, service):
    at = int(rng.integers(seq.size))
    extra = int(rng.integers(REPEAT_RUN[0], REPEAT_RUN[1] + 1)) - 1
    return np.insert(seq, at, np.repeat(seq[at], extra))


def _truncate(seq, rng, pool, service):
    keep = round(rng.uniform(*TRUNCATE_KEEP) * seq.size)
    return seq[:min(max(keep, 1), seq.size - 1)].copy()


def _foreign(seq, rng, pool, service):
    candidates = pool.foreign_to(service, seq)
    if not candidates.size:
        return None
    return np.insert(seq, int(rng.integers(1, seq.size)), rng.choice(candidates))


_CORRUPTIONS = {"drop": _drop, "swap": _swap, "repeat": _repeat, "truncate": _truncate,
                "foreign": _foreign}


@dataclass
class Corrupted:
    """Corrupted copies: the events of each, its kind and the session it was copied from."""

    sequences: list[np.ndarray]
    kinds: list[str]
    source: np.ndarray                     # index into the sessions given to corrupt()
    ineligible: dict[str, int]             # per kind: sessions it could not corrupt


def corrupt(sequences: Sequence[Sequence[int]], services: Sequence[str],
            kinds: Sequence[str], rng: np.random.Generator, *, event_pool: EventPool
            ) -> Corrupted:
    """One corrupted copy of every session per kind, where the session allows that kind.

    A session shorter than :data:`MIN_LENGTH` of a kind, one with no two adjacent
    different events (``swap``) or no foreign event to insert (``foreign``) gets no copy
    of that kind and is counted in ``ineligible``; a copy equal to its source would never
    be counted either. Deterministic given the state of ``rng``.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise RadarError(f"unknown corruption kind(s) {', '.join(unknown)}; "
                         f"available: {', '.join(KINDS)}")
    out = Corrupted([], [], np.zeros(0, np.int64), {kind: 0 for kind in kinds})
    source: list[int] = []
    for i, (events, service) in enumerate(zip(sequences, services)):
        seq = np.asarray(events, dtype=np.int64)
        for kind in kinds:
            copy = (_CORRUPTIONS[kind](seq, rng, event_pool, service)
                    if seq.size >= MIN_LENGTH[kind] else None)
            if copy is None or np.array_equal(copy, seq):
                out.ineligible[kind] += 1
                continue
            out.sequences.append(copy)
            out.kinds.append(kind)
            source.append(i)
    out.source = np.asarray(source, dtype=np.int64)
    return out


@dataclass
class HeldOutSample:
    """Sessions drawn from a held-out corpus, as plain columns (raw event ids)."""

    sequences: list[np.ndarray]
    services: list[str]
    flags: np.ndarray
    session_ids: list[int]
    session_keys: list[str | None]

    def day(self, rows: np.ndarray | None = None,
            sequences: list[np.ndarray] | None = None) -> MemoryDay:
        """A MemoryDay of ``rows`` of the sample (all by default), with their own events
        or, for corrupted copies, the ``sequences`` given."""
        rows = np.arange(len(self.sequences)) if rows is None else rows
        flags = self.flags[rows]
        return MemoryDay([self.sequences[r] for r in rows] if sequences is None else sequences,
                         [self.services[r] for r in rows],
                         has_error=(flags & ERROR_BIT) != 0, has_warn=(flags & WARN_BIT) != 0,
                         session_ids=[self.session_ids[r] for r in rows],
                         session_keys=[self.session_keys[r] for r in rows])


def sample_sessions(corpus: SessionCorpus, max_sessions: int, rng: np.random.Generator
                    ) -> HeldOutSample:
    """Up to ``max_sessions`` sessions of ``corpus`` (in corpus order), read in full."""
    n = corpus.n_sessions
    chosen = np.sort(rng.choice(n, size=min(n, max_sessions), replace=False))
    table = corpus.sessions
    sequences, ids, keys = [], [], []
    for i in chosen:      # one gather per session: a few long ones never pad the rest
        day, row = corpus.days[int(table.day[i])], int(table.row[i])
        raw, length = day.gather([row], None, int(table.length[i]))
        sequences.append(raw[0, :int(length[0])].astype(np.int64))
        ids.append(int(np.asarray(day.session_ids)[row]))
        keys.append(None if day.session_keys is None else day.session_keys[row])
    return HeldOutSample(sequences, [corpus.services[s] for s in table.service[chosen]],
                         np.asarray(table.flags[chosen], dtype=np.uint8), ids, keys)


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if hits.size else None


def _recall_block(detected: np.ndarray) -> dict:
    return {"n": int(detected.size), "detected": int(detected.sum()),
            "recall": _rate(detected)}


def _summary(sample: HeldOutSample, copies: Corrupted, untouched_flagged: np.ndarray,
             copy_flagged: np.ndarray, kinds: Sequence[str]) -> dict:
    """Recall per kind and per service over copies of sessions not flagged untouched."""
    counted = ~untouched_flagged[copies.source]
    kind_of = np.asarray(copies.kinds, dtype=object)
    service_of = np.asarray(sample.services, dtype=object)
    known = {seq.tobytes() for seq in sample.sequences}
    same = np.fromiter((seq.tobytes() in known for seq in copies.sequences), bool,
                       len(copies.sequences))
    per_kind = {}
    for kind in kinds:
        pick = counted & (kind_of == kind)
        per_kind[kind] = {**_recall_block(copy_flagged[pick]), "min_length": MIN_LENGTH[kind],
                         "n_ineligible": copies.ineligible[kind],
                         "n_same_as_untouched": int(same[pick].sum())}
    per_service = {}
    for service in sorted(set(sample.services)):
        own = service_of == service
        pick = counted & (service_of[copies.source] == service)
        per_service[service] = {
            "n_untouched": int(own.sum()), "false_alarm_rate": _rate(untouched_flagged[own]),
            **_recall_block(copy_flagged[pick]),
            "per_kind": {kind: _recall_block(copy_flagged[pick & (kind_of == kind)])
                        for kind in kinds}}
    return {"n_untouched": int(untouched_flagged.size),
            "false_alarm_rate": _rate(untouched_flagged),
            "n_copies_of_flagged_sessions": int((~counted).sum()),
            **_recall_block(copy_flagged[counted]), "per_kind": per_kind,
            "per_service": per_service}


def injected_recall(score_fn: Callable[[SessionCorpus], np.ndarray], held_out: SessionCorpus,
                    threshold: float, *, kinds: Sequence[str] = KINDS,
                    max_sessions: int = DEFAULT_SESSIONS, seed: int = 0,
                    event_pool: EventPool | None = None) -> dict:
    """Recall on corrupted copies of held-out sessions, and the false-alarm rate on them.

    ``held_out`` is a corpus of held-out sessions of the training days with the run's
    vocabulary and window; up to ``max_sessions`` of them are sampled and corrupted
    (:func:`corrupt`). ``score_fn(corpus)`` returns one score per corpus session (higher =
    more anomalous), as the trained detector or ensemble scores; a session is flagged
    when its score is above ``threshold``, as in ``radar detect``. The event pool defaults
    to the sample's events the vocabulary knows. Returns a JSON-ready dict: ``recall``,
    ``false_alarm_rate``, ``per_kind``, ``per_service`` and the ``caveat``.
    """
    if held_out.n_sessions == 0:
        raise RadarError("no held-out sessions to inject corruptions into; raise "
                         "data.calibration_fraction")
    rng = np.random.default_rng([seed, 4099])
    sample = sample_sessions(held_out, max_sessions, rng)
    pool = event_pool or EventPool.from_sessions(sample.sequences, sample.services,
                                                 known=held_out.vocab.event_ids)
    copies = corrupt(sample.sequences, sample.services, kinds, rng, event_pool=pool)
    corpus = SessionCorpus([sample.day(), sample.day(copies.source, copies.sequences)],
                           held_out.vocab, held_out.window)
    scores = np.asarray(score_fn(corpus), dtype=np.float64)
    if scores.shape != (corpus.n_sessions,):
        raise RadarError(f"the scorer returned {scores.shape} scores for "
                         f"{corpus.n_sessions} sessions; it must return one per session")
    n = len(sample.sequences)
    flagged = scores > float(threshold)
    return {"threshold": float(threshold), "seed": seed, "sessions_sampled": n,
            "kinds": list(kinds),
            **_summary(sample, copies, flagged[:n], flagged[n:], kinds), "caveat": CAVEAT}
