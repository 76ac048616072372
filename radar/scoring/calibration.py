"""Thresholds set on sessions of the training days held out from training.

Methods (``detection.threshold_method``):

- ``percentile`` (default): a high percentile of *normal* held-out scores, so the
  expected false-positive rate is known (100 - percentile %) and no labels are needed.
  Contamination (anomalies the training filter let through) above that rate drags
  the threshold into the anomalies.
- ``best_f1``: the cut with the best F1 on *labelled* held-out sessions (needs a
  label file); anomalies there are never trained on.
- ``fixed``: ``detection.threshold_value`` as given.

The threshold is never tuned on the days a run reports on. The record of how it
was set travels with the checkpoint and into every report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np

from radar.errors import ConfigError, RadarError

METHODS = ("percentile", "best_f1", "fixed")


@dataclass
class Calibration:
    method: str                 # one of METHODS
    threshold: float
    percentile: float | None
    n_sessions: int
    data: str                   # what the scores came from, for reports
    score_name: str
    f1: float | None = None     # best_f1: F1 reached on the calibration set
    warning: str | None = None  # what makes this threshold behave unlike its method says

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def describe(self) -> str:
        """One line for logs and reports: value, method and the data behind it."""
        if self.method == "percentile":
            how = f"p{self.percentile:g} of"
        elif self.method == "best_f1":
            how = f"best F1 ({self.f1:.3f}) on"
        else:
            return f"threshold {self.threshold:.4g} = {self.method} ({self.data})"
        line = f"threshold {self.threshold:.4g} = {how} {self.n_sessions} {self.data}"
        return f"{line}. Warning: {self.warning}" if self.warning else line


def _finite(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return scores[np.isfinite(scores)]


def _need(scores: np.ndarray, what: str) -> None:
    if scores.size == 0:
        raise RadarError(f"no {what} to calibrate the threshold on; the training days must "
                         "hold sessions held out from training (data.calibration_fraction), "
                         "or pass --threshold")


def percentile_threshold(normal_scores: np.ndarray, percentile: float, *, data: str,
                         score_name: str) -> Calibration:
    """Threshold at ``percentile`` of ``normal_scores``; a session must score above it."""
    scores = _finite(normal_scores)
    _need(scores, "normal sessions")
    value = float(np.percentile(scores, percentile, method="higher"))
    return Calibration("percentile", value, percentile, int(scores.size), data, score_name,
                       warning=_top_tie_warning(scores, value, percentile))


def _top_tie_warning(scores: np.ndarray, value: float, percentile: float) -> str | None:
    """Say so when the threshold is the highest normal score and more normal sessions tie
    at it than the percentile leaves above. A session must score *above* the threshold,
    so nothing scoring that value (often a score's cap, e.g. every session with an event
    unseen in training) is ever flagged."""
    tied = float(np.mean(scores == value))
    if value < scores.max() or tied <= (100.0 - percentile) / 100.0:
        return None
    return (f"{tied:.1%} of these normal sessions score exactly {value:.4g}, the highest, so "
            "no session scoring that much is flagged. This happens when a score reaches its "
            "cap (say, every session with an event never seen in training): train on more "
            "days, or set the threshold yourself (detection.threshold_method=fixed)")


def best_f1_calibration(scores: np.ndarray, labels: np.ndarray, *, data: str, score_name: str
                        ) -> Calibration:
    """The F1-best cut on labelled held-out sessions (labels 1/0; -1 are ignored)."""
    from radar.report.evaluate import best_f1_threshold

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    known = labels >= 0
    if not (labels[known] == 1).any() or not (labels[known] == 0).any():
        raise RadarError("detection.threshold_method=best_f1 needs labelled held-out sessions "
                         "of both kinds; the label file marks none anomalous (or none normal) "
                         "among them. Use threshold_method=percentile, or raise "
                         "data.calibration_fraction")
    f1, threshold = best_f1_threshold(labels[known] == 1, scores[known])
    return Calibration("best_f1", threshold, None, int(known.sum()), data, score_name, f1=f1)


def check_method(method: str, value: float | None, needs_labels: bool) -> None:
    """Fail before training when the chosen method cannot work with this config."""
    if method not in METHODS:
        raise ConfigError(f"detection.threshold_method must be one of {', '.join(METHODS)}; "
                          f"got {method!r}")
    if method == "fixed" and value is None:
        raise ConfigError("detection.threshold_method=fixed needs detection.threshold_value")
    if method == "best_f1" and not needs_labels:
        raise ConfigError("detection.threshold_method=best_f1 needs labels: set "
                          "data.label_file (or --labels FILE)")


def set_threshold(detection, *, normal_scores: np.ndarray, score_name: str,
                  holdout_scores: np.ndarray | None = None,
                  holdout_labels: np.ndarray | None = None) -> Calibration:
    """Apply ``detection.threshold_method`` (a :class:`~radar.config.DetectionConfig`).

    ``normal_scores`` are the held-out *normal* sessions; ``holdout_scores`` /
    ``holdout_labels`` all held-out sessions with their labels (``best_f1`` only).
    """
    method = detection.threshold_method
    normal_data = "normal sessions of the training days held out from training"
    if method == "percentile":
        return percentile_threshold(normal_scores, detection.threshold_percentile,
                                    data=normal_data, score_name=score_name)
    if method == "best_f1":
        if holdout_scores is None or holdout_labels is None:
            raise RadarError("detection.threshold_method=best_f1 needs labels: set "
                             "data.label_file (or --labels FILE)")
        return best_f1_calibration(
            holdout_scores, holdout_labels, score_name=score_name,
            data="labelled sessions of the training days held out from training")
    if method == "fixed":
        return Calibration("fixed", float(detection.threshold_value), None, 0,
                           "detection.threshold_value", score_name)
    raise ConfigError(f"detection.threshold_method must be one of {', '.join(METHODS)}; "
                      f"got {method!r}")
