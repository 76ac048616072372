"""Tests for the LogTCN plugin: registration, config, causality and receptive field, quality.

Scoring, explanations and the baseline are the shared radar.nextkey machinery
(tests/test_nextkey.py); the contract test trains LogTCN through the pipeline.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from radar_plugins.tcn.config import LogTCNConfig
from radar_plugins.tcn.detector import LogTCN
from radar_plugins.tcn.model import CausalConv
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.data.vocab import UNK, EventVocab
from radar.detector import SessionBatch
from radar.errors import ConfigError
from radar.nextkey import session_layout
from radar.plugins import make_plugin_manager

SMALL = {"channels": 32, "num_levels": 2, "dropout": 0.0}


make_batch = SessionBatch.from_lists


def build(seed: int = 0, **config):
    torch.manual_seed(seed)
    detector = LogTCN(LogTCNConfig(**{**SMALL, **config}))
    return detector, detector.build_model(EventVocab(np.arange(100, 112)))   # indices 5 .. 16


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
    assert make_plugin_manager().detectors()["tcn"] is LogTCN
    code = ("import sys, radar_plugins.tcn; "
            "print('radar_plugins.tcn.detector' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_config_validates_and_reports_the_receptive_field():
    assert LogTCNConfig().receptive_field == 61
    with pytest.raises(ConfigError, match="did you mean 'models.tcn.kernel_size'"):
        build_section(LogTCNConfig, {"kernel": 3}, "models.tcn")
    with pytest.raises(ConfigError, match="models.tcn.num_levels must be >= 1"):
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
    assert all(out.explanations[100 + i][0]["kind"] == "end" for i in range(20))
