"""A results file summed up in bounded memory, for `radar analyze` on tens of millions of rows.

:func:`digest_results` streams the file once and keeps only aggregates: counts per
service and per day file (sessions, anomalies, ERROR sessions, severity levels, the sum
of finite scores), the score's count, mean and variance (merged chunk by chunk, Chan et
al.), min and max, a uniform reservoir sample of scores for percentiles (exact while the
file holds no more than ``RESERVOIR`` finite scores) and a heap of the highest-scoring
records. Memory grows with the number of services and days, never with the sessions.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radar.errors import DataError
from radar.report.results import Results, iter_results
from radar.scoring.severity import LEVELS

RESERVOIR = 1_000_000        # finite scores kept for percentiles (8 MB)
CHUNK = 65_536               # records folded into the aggregates at once
# Columns of a group's counts: sessions, anomalies, has_error, finite scores, their sum,
# then one per severity level.
SESSIONS, ANOMALIES, ERRORS, FINITE, SCORE_SUM, FIRST_LEVEL = range(6)


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
    """The aggregates `radar analyze` reports, filled from columns a chunk at a time."""

    def __init__(self, path: Path, keep_top: int = 0, reservoir: int = RESERVOIR):
        self.path, self.keep_top = path, keep_top
        self.files: dict[str, int] = {}
        self.services: dict[str, int] = {}
        self.per_file = np.zeros((0, FIRST_LEVEL + len(LEVELS)))
        self.per_service = np.zeros((0, FIRST_LEVEL + len(LEVELS)))
        self.moments, self.sample = ScoreMoments(), ScoreReservoir(reservoir)
        self.thresholds: set[float] = set()
        self.has_severity = False
        self.top: list[dict[str, Any]] = []

    @property
    def n(self) -> int:
        return int(self.per_file[:, SESSIONS].sum())

    @property
    def threshold(self) -> float | None:
        return next(iter(self.thresholds)) if len(self.thresholds) == 1 else None

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

    @classmethod
    def from_results(cls, results: Results) -> ResultsDigest:
        """The digest of columns already in memory (what `radar report` loads)."""
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
               SCORE_SUM: np.where(finite, score, 0.0)}
    for column, weights in columns.items():
        table[:, column] += np.bincount(group, weights=weights, minlength=n_groups)[:n_groups]
    if severity is not None:
        for level in range(len(LEVELS)):
            table[:, FIRST_LEVEL + level] += np.bincount(group[severity == level],
                                                         minlength=n_groups)[:n_groups]
    return table


def digest_results(path: str | Path, *, keep_top: int = 0,
                   reservoir: int = RESERVOIR) -> ResultsDigest:
    """Stream a results file into a :class:`ResultsDigest` (one pass, bounded memory)."""
    path = Path(path)
    digest = ResultsDigest(path, keep_top, reservoir)
    heap: list[tuple[float, int, dict]] = []
    counter = itertools.count()
    chunk: dict[str, list] = {key: [] for key in ("file", "service", "score", "is_anomaly",
                                                  "has_error", "severity")}
    for record in iter_results(path):
        score = float(record["anomaly_score"])
        chunk["file"].append(digest.files.setdefault(str(record["file"]), len(digest.files)))
        chunk["service"].append(digest.services.setdefault(str(record["service_name"]),
                                                           len(digest.services)))
        chunk["score"].append(score)
        chunk["is_anomaly"].append(bool(record["is_anomaly"]))
        chunk["has_error"].append(bool(record.get("has_error", False)))
        level = record.get("severity")
        chunk["severity"].append(LEVELS.index(level) if level in LEVELS else -1)
        if record.get("threshold") is not None:
            digest.thresholds.add(float(record["threshold"]))
        if keep_top:
            item = (score if np.isfinite(score) else np.finfo(float).max, next(counter), record)
            if len(heap) < keep_top:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
        if len(chunk["score"]) >= CHUNK:
            _fold(digest, chunk)
    _fold(digest, chunk)
    if digest.n == 0:
        raise DataError("results file holds no records", file=str(path))
    digest.top = [record for _, _, record in sorted(heap, key=lambda item: (-item[0], item[1]))]
    return digest


def _fold(digest: ResultsDigest, chunk: dict[str, list]) -> None:
    if not chunk["score"]:
        return
    severity = np.asarray(chunk["severity"], dtype=np.int8)
    digest.add_columns(np.asarray(chunk["file"], dtype=np.int64),
                       np.asarray(chunk["service"], dtype=np.int64),
                       np.asarray(chunk["score"], dtype=np.float64),
                       np.asarray(chunk["is_anomaly"], dtype=bool),
                       np.asarray(chunk["has_error"], dtype=bool),
                       severity if (severity >= 0).any() else None)
    for values in chunk.values():
        values.clear()
