"""RADAR: plugin-based ensemble framework for log anomaly detection.

The names in ``__all__`` are the public API: what a detector plugin, a notebook or a
service embedding RADAR imports, always as ``from radar import Name``. Every other
module path is internal and may move between releases (CHANGELOG.md lists moves).
Names load on first use, so ``import radar`` stays cheap (no torch until needed).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the detector contract and the hooks a plugin implements
    "Detector": "radar.detector",
    "SessionBatch": "radar.detector",
    "SessionScores": "radar.detector",
    "eval_mode": "radar.detector",
    "unwrap": "radar.detector",
    # the explanation format score_sessions follows (radar.testing checks it)
    "EXPLAIN_KEYS": "radar.results",
    "EXPLAIN_KINDS": "radar.results",
    "hookimpl": "radar.hookspecs",
    "make_plugin_manager": "radar.plugins",
    "make_detector": "radar.plugins",
    # configuration
    "RadarConfig": "radar.config",
    "load_config": "radar.config",
    "build_config": "radar.config",
    "build_section": "radar.config",
    "SectionChecks": "radar.config",
    # errors a plugin raises or a caller catches
    "RadarError": "radar.errors",
    "ConfigError": "radar.errors",
    # the event vocabulary and its special ids
    "EventVocab": "radar.data.vocab",
    "PAD": "radar.data.vocab",
    "UNK": "radar.data.vocab",
    "CLS": "radar.data.vocab",
    "SEP": "radar.data.vocab",
    "MASK": "radar.data.vocab",
    "FIRST_EVENT": "radar.data.vocab",
    # the kit of key-predicting detectors (LogBERT, DeepLog, LSTM, TCN build on it)
    "NextKeyDetector": "radar.detector.nextkey",
    "NextKeyConfig": "radar.detector.nextkey",
    "session_layout": "radar.detector.nextkey",
    "KeyScoreSettings": "radar.detector.keys",
    "rank_and_nll": "radar.detector.keys",
    "key_scores": "radar.detector.keys",
    "explain_targets": "radar.detector.keys",
    "per_session_mean": "radar.detector.keys",
    "rule_out_specials": "radar.detector.keys",
    "NLLBaseline": "radar.detector.baseline",
    "MAX_NLL": "radar.detector.baseline",
    # combination and severity (scorer plugins)
    "Combiner": "radar.scoring.combine",
    "SeverityScorer": "radar.scoring.severity",
    "SeverityResult": "radar.scoring.severity",
    "LEVELS": "radar.scoring.severity",
    # scoring sessions with a trained run, in memory
    "RunScorer": "radar.scoring.run",
}

__all__ = ["__version__", *_EXPORTS]  # noqa: PLE0604 (names from the table above)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'radar' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
