"""Tests for the LogTCN plugin: registration, config, causality and receptive field, quality.

Scoring, explanations and the baseline are the shared radar.detector.nextkey machinery
(tests/test_nextkey.py); the contract test trains LogTCN through the pipeline.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from radar_plugins.tcn.config import LogTCNConfig
from radar_plugins.tcn.detector import LogTCN
from radar_plugins.tcn.model import CausalConv
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

SMALL = {"channels": 32, "num_levels": 2, "dropout": 0.0}


make_batch = SessionBatch.from_lists


def build(seed: int = 0, **config):
    return build_small(LogTCN, LogTCNConfig(**{**SMALL, **config}), seed)


def moved_targets(model, session, changed_at, new=12) -> list[bool]:
    """Which target rows change when event ``changed_at`` of ``session`` changes."""
    changed = list(session)
    changed[changed_at] = new
    model.eval()
    rows = []
    with torch.no_grad():
        for s in (session, changed):
            batch = make_batch([s])
            rows.append(model(*session_layout(batch.input_ids, batch.lengths)))
    return (~torch.isclose(rows[0], rows[1]).all(dim=1)).tolist()


def test_registered_through_entry_point_without_importing_torch():
    assert_registered_lazily("tcn", "tcn", LogTCN)


def test_config_validates_and_reports_the_receptive_field():
    assert LogTCNConfig().receptive_field == 61
    with pytest.raises(ConfigError, match="did you mean 'models.tcn.kernel_size'"):
        build_section(LogTCNConfig, {"kernel": 3}, "models.tcn")
    with pytest.raises(ConfigError, match="models.tcn.num_levels must be a finite number >= 1"):
        LogTCNConfig(num_levels=0)
    with pytest.raises(ConfigError, match="models.tcn.top_g"):
        LogTCNConfig(top_g=0)


def test_causal_conv_is_a_left_padded_conv1d():
    conv = CausalConv(channels=6, kernel_size=3, dilation=2)
    x = torch.randn(2, 11, 6)
    weight = conv.linear.weight.view(6, 3, 6).flip(1).permute(0, 2, 1)   # (out, in, tap)
    expected = F.conv1d(F.pad(x.transpose(1, 2), (4, 0)), weight, conv.linear.bias,
                        dilation=2).transpose(1, 2)
    torch.testing.assert_close(conv(x), expected)


def test_predictions_are_causal_and_limited_to_the_receptive_field():
    _, model = build(kernel_size=2, num_levels=2)     # receptive field 1 + 2 * 3 = 7
    session = list(range(5, 16)) + [5, 6, 7]                 # 14 events: targets 0..13 + end
    moved = moved_targets(model, session, changed_at=3)
    # Event 3 is layout position 4; target p reads positions p - 7 .. p - 1.
    assert moved == [False] * 4 + [True] * 7 + [False] * 4


def test_scores_do_not_depend_on_the_batch():
    detector, model = build()
    assert_batch_independent(detector, model)


def test_learns_the_grammar_and_flags_unseen_shuffled_and_truncated():
    detector, model = build()
    out, labels = train_and_score_planted(detector, model, steps=100)
    assert roc_auc_score(labels, out.score.numpy()) > 0.95
    assert all(out.explanations[100 + i][0]["kind"] == "end" for i in range(20))
