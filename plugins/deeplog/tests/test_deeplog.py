"""Tests for the DeepLog plugin: registration, config, the window, and a quality floor.

Scoring, explanations and the baseline are the shared radar.detector.nextkey machinery
(tests/test_nextkey.py); the contract test trains DeepLog through the pipeline.
"""

from __future__ import annotations

import pytest
import torch
from radar_plugins.deeplog.config import DeepLogConfig
from radar_plugins.deeplog.detector import DeepLog
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.detector import SessionBatch
from radar.detector.baseline import MAX_NLL
from radar.detector.nextkey import session_layout
from radar.errors import ConfigError
from radar.testing import (
    assert_batch_independent,
    assert_registered_lazily,
    build_small,
    train_and_score_planted,
)

SMALL = {"embedding_size": 16, "hidden_size": 32, "num_layers": 1}


make_batch = SessionBatch.from_lists


def target_logits(detector, model, sessions):
    batch = make_batch(sessions)
    ids, targets = session_layout(batch.input_ids, batch.lengths)
    model.eval()
    with torch.no_grad():
        return model(ids, targets)


def build(seed: int = 0, **config):
    return build_small(DeepLog, DeepLogConfig(**{**SMALL, **config}), seed)


def test_registered_through_entry_point_without_importing_torch():
    assert_registered_lazily("deeplog", "deeplog", DeepLog)


def test_config_defaults_are_the_papers_and_errors_name_the_key():
    config = DeepLogConfig()
    assert (config.window_size, config.num_layers, config.hidden_size, config.top_g) == \
        (10, 2, 64, 9)
    with pytest.raises(ConfigError, match="did you mean 'models.deeplog.window_size'"):
        build_section(DeepLogConfig, {"windw_size": 5}, "models.deeplog")
    with pytest.raises(ConfigError, match="models.deeplog.window_size must be >= 0"):
        DeepLogConfig(window_size=-1)
    with pytest.raises(ConfigError, match="models.deeplog.dropout"):
        DeepLogConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="models.deeplog.score must be one of"):
        DeepLogConfig(score="distance")


def test_a_prediction_sees_exactly_the_window():
    detector, model = build(window_size=3)
    session = [5, 6, 7, 8, 9, 10, 11]
    changed = [12] + session[1:]                        # the first event differs
    before, after = (target_logits(detector, model, [s]) for s in (session, changed))
    moved = ~torch.isclose(before, after).all(dim=1)
    # Targets are events 0..6 and the end; event 0 is inside the window of targets 1..3.
    assert moved.tolist() == [False, True, True, True, False, False, False, False]


def test_whole_session_mode_sees_every_earlier_key():
    detector, model = build(window_size=0)
    session = [5, 6, 7, 8, 9, 10, 11]
    before, after = (target_logits(detector, model, [s]) for s in (session, [12] + session[1:]))
    moved = ~torch.isclose(before, after).all(dim=1)
    assert moved.tolist() == [False] + [True] * 7


@pytest.mark.parametrize("window_size", [10, 0])
def test_scores_do_not_depend_on_the_batch(window_size):
    detector, model = build(window_size=window_size)
    assert_batch_independent(detector, model)


def test_learns_the_grammar_and_flags_unseen_shuffled_and_truncated():
    detector, model = build()
    out, labels = train_and_score_planted(detector, model, steps=120)
    assert roc_auc_score(labels, out.score.numpy()) > 0.95
    assert float(out.extras["max_nll"][60]) == pytest.approx(MAX_NLL)
    assert out.explanations[60][0]["kind"] == "unseen"
    assert out.explanations[60][0]["position"] == 3
    assert all(out.explanations[100 + i][0]["kind"] == "end" for i in range(20))
