"""The combiner contract: several detectors' scores become one.

A combiner follows the estimator conventions: ``__init__`` stores its typed config
(:class:`~radar.config.EnsembleConfig`) only; ``fit`` learns from held-out sessions
of the training days and sets attributes ending in ``_``. It turns an
(n_sessions, n_detectors) raw score matrix into one score per session: the base
class normalises each detector's column first (:mod:`radar.scoring.normalize`), so
subclasses only implement :meth:`Combiner.reduce` over comparable columns.
Severity scorers have their own base class, :class:`radar.scoring.severity.SeverityScorer`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from radar.config import EnsembleConfig
from radar.errors import RadarError
from radar.scoring.normalize import Normalizer


class Combiner:
    """Base class for ensemble combiner plugins (``ensemble.method``)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # A combiner whose output has a meaning of its own (e.g. a vote share) sets the
    # threshold here instead of having it calibrated on normal sessions.
    fixed_threshold: ClassVar[float | None] = None

    def __init__(self, config: EnsembleConfig | None = None):
        self.config = config if config is not None else EnsembleConfig()

    def fit(self, normal_scores: np.ndarray, detectors: list[str],
            thresholds: list[float] | None = None, normalize: str = "ecdf") -> Combiner:
        """Fit one normaliser per detector on normal sessions' raw scores, shape (n, d).

        ``thresholds`` are the detectors' own calibrated thresholds (raw scale), for
        combiners that count per-detector decisions.
        """
        normal_scores = np.asarray(normal_scores, dtype=np.float64)
        if normal_scores.ndim != 2 or normal_scores.shape[1] != len(detectors):
            raise RadarError(f"scorer {self.name!r}: expected scores of shape (n, "
                             f"{len(detectors)}), got {normal_scores.shape}")
        self.detectors_ = list(detectors)
        self.normalizers_ = [Normalizer(normalize).fit(normal_scores[:, j])
                             for j in range(len(detectors))]
        self.thresholds_ = list(thresholds) if thresholds is not None else None
        return self

    def normalized(self, scores: np.ndarray) -> np.ndarray:
        """Each detector's column on the common scale, shape (n, d)."""
        scores = np.asarray(scores, dtype=np.float64)
        return np.stack([norm.transform(scores[:, j])
                         for j, norm in enumerate(self.normalizers_)], axis=1)

    def combine(self, scores: np.ndarray) -> np.ndarray:
        """Combine a raw score matrix of shape (n, d) into shape (n,), higher = worse."""
        return self.reduce(self.normalized(scores), np.asarray(scores, dtype=np.float64))

    def reduce(self, normalized: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Combine normalised columns (n, d) into (n,); ``raw`` for decision-based rules."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"detectors": self.detectors_, "thresholds": self.thresholds_,
                "normalizers": [norm.to_dict() for norm in self.normalizers_]}

    def load_state_dict(self, state: dict) -> Combiner:
        self.detectors_ = list(state["detectors"])
        self.thresholds_ = state.get("thresholds")
        self.normalizers_ = [Normalizer.from_dict(item) for item in state["normalizers"]]
        return self
