"""Combining several detectors: the combiner contract and the fitted combination.

**The contract.** A combiner follows the estimator conventions: ``__init__`` stores its typed config
(:class:`~radar.config.EnsembleConfig`) only; ``fit`` learns from held-out sessions
of the training days and sets attributes ending in ``_``. It turns an
(n_sessions, n_detectors) raw score matrix into one score per session: the base
class normalises each detector's column first (:mod:`radar.scoring.normalize`), so
subclasses only implement :meth:`Combiner.reduce` over comparable columns.
Severity scorers have their own base class, :class:`radar.scoring.severity.SeverityScorer`.

**The fitted combination.** Every detector scores the same sessions (they share the run's vocabulary and
corpus order). A :class:`Combination` is fitted on their raw scores of the
calibration sessions (held out of training on the training days): one normaliser
per detector (:mod:`radar.scoring.normalize`), the combiner (``ensemble.method``)
and the ensemble threshold (``detection.threshold_method``).

The threshold is **cross-fitted**: the calibration sessions are split into
``FOLDS`` folds, each fold's combined scores come from normalisers fitted on the
other folds, and the threshold is set on those out-of-fold scores. A normaliser
never scores the sessions it was fitted on before the threshold sees them, so
the ensemble is not stricter than its members (an in-sample ecdf gives every
detector's most extreme calibration session the largest possible value, and the
threshold then lands on it). The normalisers kept for scoring are fitted on all
calibration sessions. Without a label file the cut is the knee of those out-of-fold
scores (``ensemble.threshold: knee``), which presumes no anomaly rate; with one, or
with ``ensemble.threshold: detection``, it is ``detection.threshold_method``'s.
``ensemble.json`` holds everything needed to score new days.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from radar.config import EnsembleConfig, RadarConfig, SeverityConfig, build_section
from radar.errors import RadarError
from radar.plugins import get_combiner_class, get_severity_class
from radar.scoring.calibration import HELD_OUT, Calibration, knee_threshold, set_threshold
from radar.scoring.normalize import Normalizer
from radar.scoring.severity import SeverityResult, SeverityScorer

FOLDS = 5
FORMAT_VERSION = 2



class Combiner:
    """Base class for ensemble combiner plugins (``ensemble.method``)."""

    scorer_kind: ClassVar[str] = "combiner"      # how the plugin manager tells scorers apart
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


def make_combiner(config: EnsembleConfig) -> Combiner:
    return get_combiner_class(config.method)(config)


def make_severity(config: SeverityConfig) -> SeverityScorer:
    return get_severity_class(config.scorer)(config)


def _folds(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 104729]).permutation(n) % FOLDS


def cross_fitted_scores(config: EnsembleConfig, raw: np.ndarray, names: list[str],
                        thresholds: list[float], normal: np.ndarray, seed: int) -> np.ndarray:
    """Each held-out session's combined score from normalisers fitted (on the ``normal``
    sessions) without it."""
    n = raw.shape[0]
    if normal.sum() < 2 * FOLDS:      # too few to split: in-sample, as a last resort
        combiner = make_combiner(config).fit(raw[normal], names, thresholds, config.normalize)
        return combiner.combine(raw)
    fold = _folds(n, seed)
    out = np.empty(n)
    for k in range(FOLDS):
        inside = fold == k
        combiner = make_combiner(config).fit(raw[~inside & normal], names, thresholds,
                                             config.normalize)
        out[inside] = combiner.combine(raw[inside])
    return out


@dataclass
class Combination:
    """A fitted combiner, its threshold and the severity settings: the ensemble's state."""

    combiner: Combiner
    calibration: Calibration
    ensemble: EnsembleConfig
    severity: SeverityConfig

    @property
    def names(self) -> list[str]:
        return list(self.combiner.detectors_)

    @classmethod
    def fit(cls, config: RadarConfig, raw: np.ndarray, names: list[str],
            thresholds: list[float], *, labels: np.ndarray | None = None,
            normal: np.ndarray | None = None, data: str | None = None) -> Combination:
        """Fit on the members' raw scores of the calibration sessions, shape (n, d).

        ``normal`` marks the sessions the training filter calls normal (the normalisers
        learn from those); ``labels`` (1/0/-1) feed ``best_f1`` thresholds.
        """
        normal = np.ones(raw.shape[0], dtype=bool) if normal is None else normal
        combiner = make_combiner(config.ensemble).fit(raw[normal], names, thresholds,
                                                      config.ensemble.normalize)
        score_name = f"ensemble:{config.ensemble.method}({', '.join(names)})"
        if combiner.fixed_threshold is not None:
            calibration = Calibration("fixed", float(combiner.fixed_threshold), None, 0,
                                      f"the {combiner.name} combiner's own cut", score_name)
        else:
            combined = cross_fitted_scores(config.ensemble, raw, names, thresholds, normal,
                                           config.training.seed)
            if config.ensemble.threshold == "knee" and labels is None:
                calibration = knee_threshold(
                    combined, config.detection.threshold_percentile, score_name=score_name,
                    data=HELD_OUT)
            else:
                calibration = set_threshold(
                    config.detection, normal_scores=combined[normal], score_name=score_name,
                    holdout_scores=combined if labels is not None else None,
                    holdout_labels=labels, data=data)
        return cls(combiner, calibration, config.ensemble, config.severity)

    def apply(self, raw: np.ndarray, services: list[str], service: np.ndarray,
              flags: np.ndarray) -> tuple[np.ndarray, np.ndarray, SeverityResult]:
        """(normalised (n, d), combined (n,), severity) of raw member scores (n, d)."""
        normalized = self.combiner.normalized(raw)
        combined = self.combiner.reduce(normalized, np.asarray(raw, dtype=np.float64))
        flags = np.asarray(flags)
        severity = make_severity(self.severity).assess(
            combined, self.calibration.threshold, services, np.asarray(service),
            (flags & 1).astype(bool), (flags & 2).astype(bool))
        return normalized, combined, severity

    def with_threshold(self, threshold: float) -> Combination:
        calibration = Calibration("fixed", float(threshold), None, 0, "--threshold",
                                  self.calibration.score_name)
        return Combination(self.combiner, calibration, self.ensemble, self.severity)

    def state_dict(self, checkpoints: dict[str, str]) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "method": self.ensemble.method,
                "normalize": self.ensemble.normalize, "checkpoints": checkpoints,
                "scorer": self.combiner.state_dict(), "calibration": self.calibration.to_dict(),
                "ensemble": asdict(self.ensemble), "severity": asdict(self.severity)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Combination:
        ensemble = build_section(EnsembleConfig, state["ensemble"], "ensemble")
        severity = build_section(SeverityConfig, state["severity"], "severity")
        combiner = make_combiner(ensemble).load_state_dict(state["scorer"])
        if list(combiner.detectors_) != list(state["checkpoints"]):
            raise RadarError(f"ensemble state lists detectors {combiner.detectors_}, its "
                             f"checkpoints {list(state['checkpoints'])}")
        return cls(combiner, Calibration.from_dict(state["calibration"]), ensemble, severity)


def agreement(names: list[str], scores: list[np.ndarray], thresholds: list[float]) -> dict:
    """Pairwise decision agreement and rank correlation, and how many detectors flag each."""
    from scipy.stats import spearmanr

    flags = np.stack([s > t for s, t in zip(scores, thresholds)], axis=1)
    pairs = {}
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            x, y = scores[a], scores[b]
            ok = np.isfinite(x) & np.isfinite(y)
            rho = spearmanr(x[ok], y[ok]).statistic if ok.sum() > 2 else None
            either = flags[:, a] | flags[:, b]
            pairs[f"{names[a]}~{names[b]}"] = {
                "agree": float((flags[:, a] == flags[:, b]).mean()),
                "jaccard_flagged": float((flags[:, a] & flags[:, b]).sum() / either.sum())
                if either.any() else None,
                "spearman": None if rho is None or np.isnan(rho) else float(rho)}
    counts = flags.sum(axis=1)
    return {"pairs": pairs,
            "flagged_by": {str(k): int((counts == k).sum()) for k in range(len(names) + 1)}}
