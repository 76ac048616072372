"""Checks every detector plugin's own tests share (imported by plugins/*/tests)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from radar.data.vocab import UNK, EventVocab
from radar.detector import SessionBatch
from radar.plugins import make_plugin_manager

make_batch = SessionBatch.from_lists

# A small grammar over indices 5..15: start, 2-5 blocks of three patterns, fixed ending.
BLOCKS = [[6, 7, 8], [6, 9, 8], [10, 11, 12, 13]]


def build_small(detector_cls: type, config, seed: int = 0):
    """A seeded detector and its model over raw ids 100..111 (indices 5..16, which the
    grammar here uses)."""
    torch.manual_seed(seed)
    detector = detector_cls(config)
    return detector, detector.build_model(EventVocab(np.arange(100, 112)), 30)


def assert_registered_lazily(package: str, name: str, cls: type) -> None:
    """Detector ``name`` is registered through the entry point of plugin package
    ``package``, and importing that package loads neither its detector module nor torch."""
    assert make_plugin_manager().detectors()[name] is cls
    code = (f"import sys, radar_plugins.{package}; "
            f"print('radar_plugins.{package}.detector' in sys.modules, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def assert_batch_independent(detector, model) -> None:
    """Each session scores the same alone as in a padded batch of others."""
    rng = np.random.default_rng(0)
    sessions = [[int(e) for e in rng.integers(5, 17, rng.integers(1, 25))] for _ in range(12)]
    together = detector.score_sessions(model, make_batch(sessions))
    for i, session in enumerate(sessions):
        alone = detector.score_sessions(model, make_batch([session]))
        torch.testing.assert_close(alone.score[0], together.score[i], atol=1e-5, rtol=1e-5)


def normal_session(rng: np.random.Generator) -> list[int]:
    session = [5]
    for _ in range(rng.integers(2, 6)):
        session += BLOCKS[rng.integers(len(BLOCKS))]
    return session + [14, 15]


def train_and_score_planted(detector, model, steps: int):
    """Train on the grammar, fit scoring, then score 60 normal sessions followed by 20
    with an unseen event at position 3, 20 shuffled and 20 truncated (last two cut).

    Returns the SessionScores and the labels (0 for the first 60, 1 after).
    """
    rng = np.random.default_rng(0)
    sessions = [normal_session(rng) for _ in range(256)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
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
    return out, [0] * 60 + [1] * 60
