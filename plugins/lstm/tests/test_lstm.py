"""Tests for the LogLSTM plugin: registration, config, leave-one-out context, quality.

Scoring, explanations and the baseline are the shared radar.nextkey machinery
(tests/test_nextkey.py); the contract test trains LogLSTM through the pipeline.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from radar_plugins.lstm.config import LogLSTMConfig
from radar_plugins.lstm.detector import LogLSTM
from radar_plugins.lstm.model import reverse_within_length
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.data.vocab import UNK, EventVocab
from radar.detector import SessionBatch
from radar.errors import ConfigError
from radar.nextkey import session_layout
from radar.plugins import make_plugin_manager

SMALL = {"embedding_size": 16, "hidden_size": 32, "dropout": 0.0}


make_batch = SessionBatch.from_lists


def build(seed: int = 0, **config):
    torch.manual_seed(seed)
    detector = LogLSTM(LogLSTMConfig(**{**SMALL, **config}))
    return detector, detector.build_model(EventVocab(np.arange(100, 112)))   # indices 5 .. 16


def test_registered_through_entry_point_without_importing_torch():
    assert make_plugin_manager().detectors()["lstm"] is LogLSTM
    code = ("import sys, radar_plugins.lstm; "
            "print('radar_plugins.lstm.detector' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="did you mean 'models.lstm.hidden_size'"):
        build_section(LogLSTMConfig, {"hiden_size": 5}, "models.lstm")
    with pytest.raises(ConfigError, match="models.lstm.num_layers must be >= 1"):
        LogLSTMConfig(num_layers=0)
    with pytest.raises(ConfigError, match="models.lstm.score must be one of"):
        LogLSTMConfig(score="distance")


def test_reverse_within_length_leaves_padding_alone():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_length(x, torch.tensor([3, 5]))
    assert out[..., 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    torch.testing.assert_close(reverse_within_length(out, torch.tensor([3, 5])), x)


def test_each_key_is_predicted_from_every_key_but_itself():
    _, model = build()
    session = [5, 6, 7, 8, 9, 10, 11]
    model.eval()
    rows = []
    for changed_at in range(len(session)):
        changed = list(session)
        changed[changed_at] = 16
        with torch.no_grad():
            logits = [model(*session_layout(make_batch([s]).input_ids,
                                            make_batch([s]).lengths)) for s in (session, changed)]
        moved = ~torch.isclose(logits[0], logits[1]).all(dim=1)
        assert not moved[changed_at], "a key's own prediction must not see the key"
        rows.append(moved)
    assert torch.stack(rows).sum() == len(session) * len(session)   # all others move


def test_scores_do_not_depend_on_the_batch():
    detector, model = build()
    rng = np.random.default_rng(0)
    sessions = [[int(e) for e in rng.integers(5, 17, rng.integers(1, 25))] for _ in range(12)]
    together = detector.score_sessions(model, make_batch(sessions))
    for i, session in enumerate(sessions):
        alone = detector.score_sessions(model, make_batch([session]))
        torch.testing.assert_close(alone.score[0], together.score[i], atol=1e-5, rtol=1e-5)


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
    for _ in range(100):
        chosen = rng.choice(len(sessions), 32, replace=False)
        loss = detector.training_loss(model, make_batch([sessions[i] for i in chosen]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    detector.fit_scoring(model, [make_batch(sessions[:128])])
    normal = [normal_session(rng) for _ in range(60)]
    anomalous = ([s[:3] + [UNK] + s[3:] for s in normal[:20]]
                 + [[int(e) for e in rng.permutation(s)] for s in normal[20:40]]
                 + [s[:-2] for s in normal[40:]])
    out = detector.score_sessions(model, make_batch(normal + anomalous))
    assert roc_auc_score([0] * 60 + [1] * 60, out.score.numpy()) > 0.95
    assert out.explanations[60][0] == {"position": 3, "event_id": None, "kind": "unseen",
                                       "rank": None, "probability": 0.0}
