"""radar-unigram against RADAR's detector contract, with the kit RADAR installs.

Run with the package installed (``pip install .``, then ``python -m pytest tests``):
the ``registered`` check finds the detector through the package's entry point.
"""

from __future__ import annotations

from typing import ClassVar

from radar.testing import DetectorContract, DetectorQuality


class TestUnigramContract(DetectorContract):
    """Every contract check, on the default config and a small explanation."""

    detector_name = "unigram"
    config: ClassVar[dict] = {"explain_top_k": 2}


class TestUnigramMeanNLLContract(DetectorContract):
    """The other score keeps the contract too (checked by the format and scoring checks;
    registration does not depend on the config)."""

    detector_name = "unigram"
    config: ClassVar[dict] = {"score": "mean_nll", "explain_top_k": 0}


class TestUnigramQuality(DetectorQuality):
    """The opt-in quality floors. ``detects_shuffled`` is skipped: the detector declares
    ``order_aware = False``."""

    detector_name = "unigram"
    expected_failures: ClassVar[dict] = {
        "detects_truncated": "the score is the rarity of a session's events; a session "
                             "cut short holds only common events, so it scores like a "
                             "normal one (ROC-AUC 0.5)",
    }
