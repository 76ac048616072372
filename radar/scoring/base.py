"""The scorer contract: turn an (n_sessions, n_detectors) score matrix into one score each.

Scorers follow the estimator conventions: ``__init__`` stores config only,
``fit`` learns from scores of *normal* validation sessions and sets attributes
ending in ``_``, ``combine`` returns shape (n_sessions,), higher = more anomalous.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class Scorer:
    """Base class for ensemble and severity scorer plugins."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, config: Any = None):
        self.config = config

    def fit(self, scores: np.ndarray, detectors: list[str]) -> Scorer:
        """Learn calibration from normal sessions' scores, shape (n, len(detectors))."""
        self.detectors_ = list(detectors)
        return self

    def combine(self, scores: np.ndarray) -> np.ndarray:
        """Combine a score matrix of shape (n, d) into shape (n,)."""
        raise NotImplementedError
