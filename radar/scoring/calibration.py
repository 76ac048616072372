"""Thresholds from scores of normal sessions held out from training.

The default sets the threshold at a high percentile of normal calibration
scores, so its expected false-positive rate is known (100 - percentile %) and
no labels are needed. The record of how a threshold was set travels with the
checkpoint and into every report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from radar.errors import RadarError


@dataclass
class Calibration:
    method: str                 # "percentile" | "fixed"
    threshold: float
    percentile: float | None
    n_sessions: int
    data: str                   # what the scores came from, for reports
    score_name: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(**data)


def percentile_threshold(normal_scores: np.ndarray, percentile: float, *, data: str,
                         score_name: str) -> Calibration:
    """Threshold at ``percentile`` of ``normal_scores``; a session must score above it."""
    scores = np.asarray(normal_scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise RadarError("no normal sessions to calibrate the threshold on; lower "
                         "data.calibration_fraction only if the training days hold normal "
                         "sessions, or pass --threshold")
    value = float(np.percentile(scores, percentile, method="higher"))
    return Calibration("percentile", value, percentile, int(scores.size), data, score_name)
