"""Test kit for detector plugins: the detector contract as pytest tests in your package.

A plugin's test file subclasses :class:`DetectorContract` (and, opt-in, the quality
floors of :class:`DetectorQuality`); pytest collects one test per check::

    from radar.testing import DetectorContract

    class TestMyDetector(DetectorContract):
        detector_name = "mydetector"                # as registered; installed package
        config = {"hidden_size": 16}                # the models.mydetector section
        expected_failures = {"check": "reason"}     # xfail(strict=True) with the reason

The checks are plain functions too (``CONTRACT_CHECKS``, ``DetectorUnderTest``), for
use outside pytest. The two base classes import pytest, on first use; RADAR itself never
imports this package.
"""

from __future__ import annotations

from typing import Any

from radar.testing.checks import (
    CONTRACT_CHECKS,
    QUALITY_CHECKS,
    DetectorUnderTest,
    NotApplicable,
    check_detects,
    planted_scores,
)
from radar.testing.sessions import (
    BLOCKS,
    assert_batch_independent,
    assert_registered_lazily,
    build_small,
    make_batch,
    normal_session,
    train_and_score_planted,
    train_on_grammar,
)

_PYTEST_CLASSES = ("DetectorContract", "DetectorQuality")

__all__ = [
    "BLOCKS",
    "CONTRACT_CHECKS",
    "QUALITY_CHECKS",
    "DetectorContract",
    "DetectorQuality",
    "DetectorUnderTest",
    "NotApplicable",
    "assert_batch_independent",
    "assert_registered_lazily",
    "build_small",
    "check_detects",
    "make_batch",
    "normal_session",
    "planted_scores",
    "train_and_score_planted",
    "train_on_grammar",
]


def __getattr__(name: str) -> Any:
    """The pytest base classes, imported (with pytest) when first asked for."""
    if name in _PYTEST_CLASSES:
        from radar.testing import contract

        value = getattr(contract, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'radar.testing' has no attribute {name!r}")
