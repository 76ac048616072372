"""A results file summed up in bounded memory, for `radar analyze`, `radar evaluate` and
`radar report` on tens of millions of rows.

:func:`digest_results` streams the file once and keeps only aggregates: counts per
service and per day file (sessions, anomalies, ERROR sessions, flagged ERROR sessions,
severity levels, the sum of finite scores), the score's count, mean and variance (merged
chunk by chunk, Chan et al.), min and max, a uniform reservoir sample of scores for
percentiles (exact while the file holds no more than ``RESERVOIR`` finite scores), a heap
of the highest-scoring records and a hash of the (file, session_id) sequence. For
`radar report` and `radar evaluate` it also keeps the detection quality against labels
and against ``has_error`` (:class:`~radar.scoring.tally.EvaluationTally`: exact counts at
the threshold, or at a given one, histograms for the curves) and an
:class:`AlignedSample` of (label, has_error, score) rows for the plots. Memory grows
with the number of services and days, never with the sessions.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radar.errors import DataError
from radar.results import LabelJoin, Results, iter_results
from radar.scoring.severity import LEVELS
from radar.scoring.tally import AlignedSample, EvaluationTally

RESERVOIR = 1_000_000        # finite scores kept for percentiles (8 MB)
CHUNK = 65_536               # records folded into the aggregates at once
# Columns of a group's counts: sessions, anomalies, has_error, finite scores, their sum,
# anomalies with has_error, then one per severity level.
SESSIONS, ANOMALIES, ERRORS, FINITE, SCORE_SUM, FLAGGED_ERRORS, FIRST_LEVEL = range(7)
# Columns of the aligned sample the report plots from.
SAMPLE_LABEL, SAMPLE_ERROR, SAMPLE_SCORE = range(3)


@dataclass
class ScoreMoments:
    """Count, mean and M2 of the finite scores, plus min, max and the infinite ones."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = np.inf
    high: float = -np.inf
    n_infinite: int = 0

    def add(self, scores: np.ndarray) -> None:
        finite = scores[np.isfinite(scores)]
        self.n_infinite += int(scores.size - finite.size)
        if not finite.size:
            return
        n, mean = finite.size, float(finite.mean())
        m2 = float(((finite - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total
        self.low, self.high = min(self.low, float(finite.min())), max(self.high, float(finite.max()))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


@dataclass
class ScoreReservoir:
    """A uniform sample of at most ``size`` finite scores (Algorithm R, vectorised)."""

    size: int = RESERVOIR
    seen: int = 0
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def add(self, scores: np.ndarray) -> None:
        scores = scores[np.isfinite(scores)]
        room = max(0, self.size - self.values.size)
        self.values = np.concatenate([self.values, scores[:room]])
        rest = scores[room:]
        self.seen += scores.size
        if rest.size:
            # Item number t (1-based, counting all seen) replaces a random slot with
            # probability size / t.
            t = self.seen - rest.size + np.arange(1, rest.size + 1)
            slot = (self.rng.random(rest.size) * t).astype(np.int64)
            keep = slot < self.size
            self.values[slot[keep]] = rest[keep]


class ResultsDigest:
    """The aggregates `radar analyze` and `radar report` use, filled a chunk at a time.

    ``quality`` (for `radar report`) adds the detection quality against ``has_error``
    (``weak``) and, with a ``labels`` join, against the label file (``labelled``), both
    at the file's threshold, or at ``threshold`` when one is given (`radar evaluate
    --threshold`); ``plot_sample`` keeps that many aligned (label, has_error, score) rows.
    """

    def __init__(self, path: Path, keep_top: int = 0, reservoir: int = RESERVOIR, *,
                 quality: bool = False, labels: LabelJoin | None = None,
                 plot_sample: int = 0, threshold: float | None = None):
        self.path, self.keep_top = path, keep_top
        self.files: dict[str, int] = {}
        self.services: dict[str, int] = {}
        self.per_file = np.zeros((0, FIRST_LEVEL + len(LEVELS)))
        self.per_service = np.zeros((0, FIRST_LEVEL + len(LEVELS)))
        self.moments, self.sample = ScoreMoments(), ScoreReservoir(reservoir)
        self.thresholds: set[float] = set()
        self.has_severity = False
        self.top: list[dict[str, Any]] = []
        self.sequence = hashlib.blake2b(digest_size=16)     # of (file, session_id) in order
        self.quality, self.labels = quality, labels
        self.given_threshold = None if threshold is None else float(threshold)
        self.weak: EvaluationTally | None = None
        self.labelled: EvaluationTally | None = None
        self.rows = AlignedSample(plot_sample, 3) if plot_sample else None
        self.unjudged = 0        # sessions folded before any threshold was seen

    @property
    def n(self) -> int:
        return int(self.per_file[:, SESSIONS].sum())

    @property
    def threshold(self) -> float | None:
        return next(iter(self.thresholds)) if len(self.thresholds) == 1 else None

    @property
    def session_sequence(self) -> str:
        """A hash of the file's (file, session_id) sequence: equal for two results files
        of the same sessions in the same order."""
        return self.sequence.hexdigest()

    def add_columns(self, file: np.ndarray, service: np.ndarray, score: np.ndarray,
                    is_anomaly: np.ndarray, has_error: np.ndarray,
                    severity: np.ndarray | None) -> None:
        """Fold one chunk (indices into ``files`` / ``services``) into the aggregates."""
        self.moments.add(score)
        self.sample.add(score)
        self.per_file = _grouped(self.per_file, len(self.files), file, score, is_anomaly,
                                 has_error, severity)
        self.per_service = _grouped(self.per_service, len(self.services), service, score,
                                    is_anomaly, has_error, severity)
        self.has_severity |= severity is not None and bool((severity >= 0).any())

    def add_quality(self, chunk: dict[str, Any], start: int) -> None:
        """Fold one chunk into the quality tallies and the plot sample (``start``: the
        position of its first record in the file)."""
        threshold = self.given_threshold
        if threshold is None:
            if not self.thresholds:       # no threshold yet: the report refuses the file
                self.unjudged += chunk["score"].size
                return
            threshold = min(self.thresholds)   # more than one: the report refuses the file
        file, service = chunk["file"], chunk["service"]
        score, has_error = chunk["score"], chunk["has_error"]
        groups = {"per_service": (service, list(self.services)),
                  "per_day": (file, list(self.files))}
        self.weak = self.weak or EvaluationTally(threshold)
        self.weak.add(score, has_error.astype(np.int8), groups)
        labels = np.full(score.size, -1, dtype=np.int8)
        if self.labels is not None:
            labels = self.labels.labels(list(self.files), file, chunk["session_id"],
                                        chunk["session_key"])
            self.labelled = self.labelled or EvaluationTally(threshold)
            self.labelled.add(score, labels, groups)
        if self.rows is not None:
            self.rows.add(np.arange(start, start + score.size),
                          np.stack([labels, has_error, score], axis=1))

    def severity_counts(self, per: str) -> dict[str, dict[str, int]]:
        """{service or day file: {LEVEL: sessions}} (what ``level_counts`` gives)."""
        table, names = ((self.per_service, self.services) if per == "service"
                        else (self.per_file, self.files))
        return {name: {level: int(table[index, FIRST_LEVEL + i])
                       for i, level in enumerate(LEVELS)}
                for name, index in names.items() if table[index, SESSIONS] > 0}

    @classmethod
    def from_results(cls, results: Results) -> ResultsDigest:
        """The digest of columns already in memory (what :func:`analyze` makes of a
        :func:`~radar.results.load_results`)."""
        digest = cls(results.path)
        digest.files = {name: i for i, name in enumerate(results.files)}
        digest.services = {name: i for i, name in enumerate(results.services)}
        digest.add_columns(results.file, results.service, results.score, results.is_anomaly,
                           results.has_error, results.severity)
        digest.thresholds, digest.top = set(results.thresholds), list(results.top)
        return digest


def _grouped(table: np.ndarray, n_groups: int, group: np.ndarray, score: np.ndarray,
             is_anomaly: np.ndarray, has_error: np.ndarray,
             severity: np.ndarray | None) -> np.ndarray:
    if table.shape[0] < n_groups:
        table = np.vstack([table, np.zeros((n_groups - table.shape[0], table.shape[1]))])
    finite = np.isfinite(score)
    columns = {SESSIONS: None, ANOMALIES: is_anomaly, ERRORS: has_error, FINITE: finite,
               SCORE_SUM: np.where(finite, score, 0.0), FLAGGED_ERRORS: is_anomaly & has_error}
    for column, weights in columns.items():
        table[:, column] += np.bincount(group, weights=weights, minlength=n_groups)[:n_groups]
    if severity is not None:
        for level in range(len(LEVELS)):
            table[:, FIRST_LEVEL + level] += np.bincount(group[severity == level],
                                                         minlength=n_groups)[:n_groups]
    return table


def top_rank(score: float) -> float:
    """Where a score ranks among the highest: +inf first, NaN and -inf last."""
    if np.isfinite(score):
        return score
    return np.finfo(float).max if score > 0 else -np.finfo(float).max


def digest_results(path: str | Path, *, keep_top: int = 0, reservoir: int = RESERVOIR,
                   quality: bool = False, labels: LabelJoin | None = None,
                   plot_sample: int = 0, threshold: float | None = None) -> ResultsDigest:
    """Stream a results file into a :class:`ResultsDigest` (one pass, bounded memory);
    ``threshold`` replaces the file's own for the quality tallies."""
    path = Path(path)
    digest = ResultsDigest(path, keep_top, reservoir, quality=quality, labels=labels,
                           plot_sample=plot_sample, threshold=threshold)
    heap: list[tuple[float, int, dict]] = []
    counter = itertools.count()
    chunk: dict[str, list] = {key: [] for key in CHUNK_KEYS}
    folded = 0
    for record in iter_results(path):
        score = float("nan") if record["anomaly_score"] is None else float(record["anomaly_score"])
        file = str(record["file"])
        chunk["file"].append(digest.files.setdefault(file, len(digest.files)))
        chunk["service"].append(digest.services.setdefault(str(record["service_name"]),
                                                           len(digest.services)))
        chunk["score"].append(score)
        chunk["is_anomaly"].append(bool(record["is_anomaly"]))
        chunk["has_error"].append(bool(record.get("has_error", False)))
        level = record.get("severity")
        chunk["severity"].append(LEVELS.index(level) if level in LEVELS else -1)
        chunk["session_id"].append(int(record["session_id"]))
        chunk["session_key"].append(record.get("session_key"))
        digest.sequence.update(f"{file}\t{record['session_id']}\n".encode())
        if record.get("threshold") is not None:
            digest.thresholds.add(float(record["threshold"]))
        if keep_top:
            item = (top_rank(score), next(counter), record)
            if len(heap) < keep_top:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
        if len(chunk["score"]) >= CHUNK:
            folded = _fold(digest, chunk, folded)
    _fold(digest, chunk, folded)
    if digest.n == 0:
        raise DataError("results file holds no records", file=str(path))
    digest.top = [record for _, _, record in sorted(heap, key=lambda item: (-item[0], item[1]))]
    return digest


CHUNK_KEYS = ("file", "service", "score", "is_anomaly", "has_error", "severity", "session_id",
              "session_key")


def _fold(digest: ResultsDigest, chunk: dict[str, list], start: int) -> int:
    """Fold the chunk in and empty it; returns the position after it."""
    n = len(chunk["score"])
    if not n:
        return start
    severity = np.asarray(chunk["severity"], dtype=np.int8)
    columns = {"file": np.asarray(chunk["file"], dtype=np.int64),
               "service": np.asarray(chunk["service"], dtype=np.int64),
               "score": np.asarray(chunk["score"], dtype=np.float64),
               "is_anomaly": np.asarray(chunk["is_anomaly"], dtype=bool),
               "has_error": np.asarray(chunk["has_error"], dtype=bool),
               "session_id": np.asarray(chunk["session_id"], dtype=np.int64),
               "session_key": list(chunk["session_key"])}
    digest.add_columns(columns["file"], columns["service"], columns["score"],
                       columns["is_anomaly"], columns["has_error"],
                       severity if (severity >= 0).any() else None)
    if digest.quality:
        digest.add_quality(columns, start)
    for values in chunk.values():
        values.clear()
    return start + n
