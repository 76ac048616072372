"""pytest base classes: subclass one in a plugin's test file and pytest collects the checks.

::

    from radar.testing import DetectorContract

    class TestUnigramContract(DetectorContract):
        detector_name = "unigram"
        config = {"explain_top_k": 2}
        expected_failures = {"order_flag": "why it cannot pass"}

Each check is one test, ``test_<check>``. A check named in ``expected_failures`` runs
as ``xfail(strict=True)`` with the reason given: it is reported as XFAIL while it
fails, and fails the run (XPASS(strict)) once it passes, so a fixed detector must drop
the entry. A name that is no check is an error when the class is defined.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from radar.testing.checks import (
    CONTRACT_CHECKS,
    QUALITY_CHECKS,
    DetectorUnderTest,
    NotApplicable,
    check_detects,
)

# test class -> its DetectorUnderTest (which caches the trained model)
_SUBJECTS: weakref.WeakKeyDictionary[type, DetectorUnderTest] = weakref.WeakKeyDictionary()


class _DetectorKit:
    """What both kits share: which detector, its config, and the expected failures."""

    # the detector's registered name; with detector_cls None the class is looked up
    detector_name: ClassVar[str] = ""
    detector_cls: ClassVar[type | None] = None
    # the models.NAME section: a config_class instance, a mapping of its keys, or None
    config: ClassVar[Any] = None
    # check name -> why this detector cannot pass it (xfail, strict)
    expected_failures: ClassVar[Mapping[str, str]] = {}
    # optimiser steps a "trained" detector gets
    train_steps: ClassVar[int] = 30
    _checks: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = sorted(set(cls.expected_failures) - set(cls._checks))
        if unknown:
            raise TypeError(f"{cls.__name__}.expected_failures names no check: {unknown}; "
                            f"the checks are {', '.join(cls._checks)}")
        unexplained = sorted(k for k, v in cls.expected_failures.items()
                             if not isinstance(v, str) or not v.strip())
        if unexplained:
            raise TypeError(f"{cls.__name__}.expected_failures: give a reason for "
                            f"{unexplained}")

    @pytest.fixture
    def radar_subject(self) -> DetectorUnderTest:
        """The detector under test, one per test class: it trains once for the checks
        that only score it."""
        cls = type(self)
        if cls not in _SUBJECTS:
            _SUBJECTS[cls] = DetectorUnderTest(cls.detector_name, cls.detector_cls,
                                               cls.config, cls.train_steps)
        return _SUBJECTS[cls]

    @pytest.fixture(autouse=True)
    def _radar_expected_failure(self, request: pytest.FixtureRequest) -> None:
        check = request.function.__name__.removeprefix("test_")
        reason = self.expected_failures.get(check)
        if reason is not None:
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))


class DetectorContract(_DetectorKit):
    """The detector contract, one test per check of ``radar.testing.CONTRACT_CHECKS``."""

    _checks = tuple(CONTRACT_CHECKS)

    def test_registered(self, radar_subject):
        CONTRACT_CHECKS["registered"](radar_subject)

    def test_registered_lazily(self, radar_subject):
        CONTRACT_CHECKS["registered_lazily"](radar_subject)

    def test_trainable_flag(self, radar_subject):
        CONTRACT_CHECKS["trainable_flag"](radar_subject)

    def test_learns(self, radar_subject):
        CONTRACT_CHECKS["learns"](radar_subject)

    def test_session_losses(self, radar_subject):
        CONTRACT_CHECKS["session_losses"](radar_subject)

    def test_score_format(self, radar_subject):
        CONTRACT_CHECKS["score_format"](radar_subject)

    def test_explanation_format(self, radar_subject):
        CONTRACT_CHECKS["explanation_format"](radar_subject)

    def test_deterministic(self, radar_subject):
        CONTRACT_CHECKS["deterministic"](radar_subject)

    def test_batch_independent(self, radar_subject):
        CONTRACT_CHECKS["batch_independent"](radar_subject)

    def test_checkpoint_round_trip(self, radar_subject):
        CONTRACT_CHECKS["checkpoint_round_trip"](radar_subject)

    def test_order_flag(self, radar_subject):
        CONTRACT_CHECKS["order_flag"](radar_subject)

    def test_validation_loss(self, radar_subject):
        CONTRACT_CHECKS["validation_loss"](radar_subject)


class DetectorQuality(_DetectorKit):
    """Opt-in quality floors, apart from the contract: trained ``quality_steps`` steps on
    the kit's grammar, the detector must separate sessions with a planted anomaly (an
    unseen event, a shuffle, a truncation) from normal ones, ROC-AUC above
    ``auc_floor`` per kind. ``detects_shuffled`` is skipped for ``order_aware = False``."""

    _checks = QUALITY_CHECKS
    auc_floor: ClassVar[float] = 0.9
    quality_steps: ClassVar[int] = 100

    @pytest.fixture
    def radar_planted(self, radar_subject):
        return radar_subject.planted(self.quality_steps)

    def _detects(self, kind: str, radar_subject, radar_planted) -> None:
        try:
            check_detects(kind, *radar_planted, self.auc_floor, radar_subject.cls.order_aware)
        except NotApplicable as reason:
            pytest.skip(str(reason))

    def test_detects_unseen(self, radar_subject, radar_planted):
        self._detects("unseen", radar_subject, radar_planted)

    def test_detects_shuffled(self, radar_subject, radar_planted):
        self._detects("shuffled", radar_subject, radar_planted)

    def test_detects_truncated(self, radar_subject, radar_planted):
        self._detects("truncated", radar_subject, radar_planted)
