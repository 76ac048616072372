"""Tests for the DeepLog plugin: registration, config, the window, and a quality floor.

Scoring, explanations and the baseline are the shared radar.nextkey machinery
(tests/test_nextkey.py); the contract test trains DeepLog through the pipeline.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from radar_plugins.deeplog.config import DeepLogConfig
from radar_plugins.deeplog.detector import DeepLog
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.data.vocab import UNK, EventVocab
from radar.detector import SessionBatch
from radar.errors import ConfigError
from radar.nextkey import session_layout
from radar.plugins import make_plugin_manager
from radar.scoring.baseline import MAX_NLL

SMALL = {"embedding_size": 16, "hidden_size": 32, "num_layers": 1}


make_batch = SessionBatch.from_lists


def target_logits(detector, model, sessions):
    batch = make_batch(sessions)
    ids, targets = session_layout(batch.input_ids, batch.lengths)
    model.eval()
    with torch.no_grad():
        return model(ids, targets)


def build(seed: int = 0, **config):
    torch.manual_seed(seed)
    detector = DeepLog(DeepLogConfig(**{**SMALL, **config}))
    return detector, detector.build_model(EventVocab(np.arange(100, 112)))   # indices 5 .. 16


def test_registered_through_entry_point_without_importing_torch():
    assert make_plugin_manager().detectors()["deeplog"] is DeepLog
    code = ("import sys, radar_plugins.deeplog; "
            "print('radar_plugins.deeplog.detector' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


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
    rng = np.random.default_rng(0)
    sessions = [[int(e) for e in rng.integers(5, 17, rng.integers(1, 25))] for _ in range(12)]
    together = detector.score_sessions(model, make_batch(sessions))
    for i, session in enumerate(sessions):
        alone = detector.score_sessions(model, make_batch([session]))
        torch.testing.assert_close(alone.score[0], together.score[i], atol=1e-5, rtol=1e-5)


# A small grammar over indices 5..15: start, 2-5 blocks of three patterns, fixed ending.
BLOCKS = [[6, 7, 8], [6, 9, 8], [10, 11, 12, 13]]


def normal_session(rng: np.random.Generator) -> list[int]:
    session = [5]
    for _ in range(rng.integers(2, 6)):
        session += BLOCKS[rng.integers(len(BLOCKS))]
    return session + [14, 15]


def test_learns_the_grammar_and_flags_unseen_shuffled_and_truncated():
    detector, model = build()
    rng = np.random.default_rng(0)
    sessions = [normal_session(rng) for _ in range(256)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(120):
        chosen = rng.choice(len(sessions), 32, replace=False)
        loss = detector.training_loss(model, make_batch([sessions[i] for i in chosen]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    detector.fit_scoring(model, [make_batch(sessions[:128])])
    normal = [normal_session(rng) for _ in range(60)]
    unseen = [s[:3] + [UNK] + s[3:] for s in normal[:20]]
    shuffled = [[int(e) for e in rng.permutation(s)] for s in normal[20:40]]
    truncated = [s[:-2] for s in normal[40:]]
    out = detector.score_sessions(model, make_batch(normal + unseen + shuffled + truncated))
    labels = [0] * 60 + [1] * 60
    assert roc_auc_score(labels, out.score.numpy()) > 0.95
    assert float(out.extras["max_nll"][60]) == pytest.approx(MAX_NLL)
    assert out.explanations[60][0]["kind"] == "unseen"
    assert out.explanations[60][0]["position"] == 3
    assert all(out.explanations[100 + i][0]["kind"] == "end" for i in range(20))
