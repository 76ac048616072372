"""Tests for the LogLSTM plugin: registration, config, leave-one-out context, quality.

Scoring, explanations and the baseline are the shared radar.detector.nextkey machinery
(tests/test_nextkey.py); the contract test trains LogLSTM through the pipeline.
"""

from __future__ import annotations

import pytest
import torch
from radar_plugins.lstm.config import LogLSTMConfig
from radar_plugins.lstm.detector import LogLSTM
from radar_plugins.lstm.model import reverse_within_length
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.detector import SessionBatch
from radar.detector.nextkey import session_layout
from radar.errors import ConfigError
from radar.testing import (
    assert_batch_independent,
    assert_registered_lazily,
    build_small,
    train_and_score_planted,
)

SMALL = {"embedding_size": 16, "hidden_size": 32, "dropout": 0.0}


make_batch = SessionBatch.from_lists


def build(seed: int = 0, **config):
    return build_small(LogLSTM, LogLSTMConfig(**{**SMALL, **config}), seed)


def test_registered_through_entry_point_without_importing_torch():
    assert_registered_lazily("lstm", "lstm", LogLSTM)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="did you mean 'models.lstm.hidden_size'"):
        build_section(LogLSTMConfig, {"hiden_size": 5}, "models.lstm")
    with pytest.raises(ConfigError, match="models.lstm.num_layers must be a finite number >= 1"):
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
    assert_batch_independent(detector, model)


def test_learns_the_grammar_and_flags_unseen_shuffled_and_truncated():
    detector, model = build()
    out, labels = train_and_score_planted(detector, model, steps=100)
    assert roc_auc_score(labels, out.score.numpy()) > 0.95
    assert out.explanations[60][0] == {"position": 3, "event_id": None, "kind": "unseen",
                                       "rank": None, "probability": 0.0}
