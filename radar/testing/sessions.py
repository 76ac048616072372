"""Small generated sessions and the helpers the checks train and score detectors with.

Everything here works on vocabulary indices: the kit builds each detector's model for
``VOCAB`` (raw event ids 100..111, indices 5..16) with a window of ``WINDOW`` events,
and sessions follow a strict grammar over indices 5..15: a start event, 2-5 blocks
drawn from ``BLOCKS``, then a fixed two-event ending. Index 16 never occurs in it.
Nothing here imports pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import torch

from radar import UNK, EventVocab, SessionBatch, SessionScores, make_plugin_manager

make_batch = SessionBatch.from_lists

# A small grammar over indices 5..15: start, 2-5 blocks of three patterns, fixed ending.
START, END = [5], [14, 15]
BLOCKS = [[6, 7, 8], [6, 9, 8], [10, 11, 12, 13]]
VOCAB_IDS = np.arange(100, 112)
WINDOW = 30
TRAINING_SESSIONS, FIT_SESSIONS, BATCH = 256, 128, 32
KINDS = ("unseen", "shuffled", "truncated")


def vocab() -> EventVocab:
    """The vocabulary every kit model is built for (raw ids 100..111)."""
    return EventVocab(VOCAB_IDS)


def build_small(detector_cls: type, config: Any, seed: int = 0):
    """A seeded detector and its model over raw ids 100..111 (indices 5..16, which the
    grammar here uses)."""
    torch.manual_seed(seed)
    detector = detector_cls(config)
    return detector, detector.build_model(vocab(), WINDOW)


def normal_session(rng: np.random.Generator) -> list[int]:
    """One session of the grammar."""
    session = list(START)
    for _ in range(rng.integers(2, 6)):
        session += BLOCKS[rng.integers(len(BLOCKS))]
    return session + END


def random_sessions(rng: np.random.Generator, n: int = 12) -> list[list[int]]:
    """``n`` sessions of 1-24 random indices in 5..16 (any order, any length)."""
    return [[int(e) for e in rng.integers(5, 17, rng.integers(1, 25))] for _ in range(n)]


def train_on_grammar(detector, model, steps: int, rng: np.random.Generator | None = None,
                     losses: list[float] | None = None) -> list[list[int]]:
    """Train ``model`` for ``steps`` AdamW steps (lr 1e-2, 32 sessions a batch) on 256
    grammar sessions, as the shared Trainer would with ``training_loss``, then let the
    detector fit its scoring on the first 128. A detector with ``trainable = False``
    runs no steps: ``fit_scoring`` is all it gets, as in a real run.

    Appends each step's loss to ``losses`` when given; returns the training sessions.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    sessions = [normal_session(rng) for _ in range(TRAINING_SESSIONS)]
    if detector.trainable and steps:
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model.train()
        for _ in range(steps):
            chosen = rng.choice(len(sessions), BATCH, replace=False)
            loss = detector.training_loss(model, make_batch([sessions[i] for i in chosen]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if losses is not None:
                losses.append(float(loss.detach()))
    detector.fit_scoring(model, [make_batch(sessions[:FIT_SESSIONS])])
    return sessions


def planted_sessions(rng: np.random.Generator) -> tuple[list[list[int]], list[str]]:
    """60 normal sessions, then 20 each with an unseen event (UNK) at position 3, shuffled,
    and truncated (last two events cut); returns the sessions and each one's kind."""
    normal = [normal_session(rng) for _ in range(60)]
    unseen = [s[:3] + [UNK] + s[3:] for s in normal[:20]]
    shuffled = [[int(e) for e in rng.permutation(s)] for s in normal[20:40]]
    truncated = [s[:-2] for s in normal[40:]]
    kinds = ["normal"] * 60 + [kind for kind in KINDS for _ in range(20)]
    return normal + unseen + shuffled + truncated, kinds


def train_and_score_planted(detector, model, steps: int) -> tuple[SessionScores, list[int]]:
    """Train on the grammar, fit scoring, then score 60 normal sessions followed by 20
    with an unseen event at position 3, 20 shuffled and 20 truncated (last two cut).

    Returns the SessionScores and the labels (0 for the first 60, 1 after).
    """
    rng = np.random.default_rng(0)
    train_on_grammar(detector, model, steps, rng)
    sessions, kinds = planted_sessions(rng)
    out = detector.score_sessions(model, make_batch(sessions))
    return out, [int(kind != "normal") for kind in kinds]


def assert_batch_independent(detector, model, extras: bool = False) -> None:
    """Each session scores the same alone as in a padded batch of others (and so does
    each of its ``extras`` when asked)."""
    sessions = random_sessions(np.random.default_rng(0))
    together = detector.score_sessions(model, make_batch(sessions))
    for i, session in enumerate(sessions):
        alone = detector.score_sessions(model, make_batch([session]))
        torch.testing.assert_close(alone.score[0], together.score[i], atol=1e-5, rtol=1e-5,
                                   msg=lambda m, i=i: f"session {i}, score: {m}")
        if extras:
            assert set(alone.extras) == set(together.extras)
            for name, values in together.extras.items():
                torch.testing.assert_close(alone.extras[name][0], values[i], atol=1e-5,
                                           rtol=1e-5,
                                           msg=lambda m, i=i, n=name: f"session {i}, {n}: {m}")


def registering_plugin(name: str) -> tuple[str, Any]:
    """The plugin (its registered name and module) whose ``register_detectors`` hook
    registers detector ``name``."""
    pm = make_plugin_manager()
    for plugin_name, plugin in pm.list_name_plugin():
        hook = getattr(plugin, "register_detectors", None)
        if hook is None:
            continue
        registered: list[type] = []
        hook(registered.append)
        if any(getattr(cls, "name", None) == name for cls in registered):
            return plugin_name, plugin
    raise AssertionError(f"no plugin registers a detector called {name!r} (found "
                         f"{sorted(pm.detectors())}; import failures: {pm.failures})")


def imported_by(module: str, watch: list[str]) -> dict[str, bool]:
    """Import ``module`` in a fresh interpreter with this one's ``sys.path``; which of the
    ``watch`` modules did that load?"""
    code = ("import importlib, json, sys; "
            f"importlib.import_module({module!r}); "
            f"print(json.dumps({{m: m in sys.modules for m in {watch!r}}}))")
    path = os.pathsep.join(p for p in sys.path if p)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": path}, timeout=120)
    assert done.returncode == 0, f"importing {module} failed:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_registered_lazily(package: str, name: str, cls: type) -> None:
    """Detector ``name`` is registered through the entry point of plugin package
    ``radar_plugins.<package>``, and importing that package loads neither its detector
    module nor torch (built-in detectors; a third-party one uses the contract's
    ``registered_lazily`` check)."""
    assert make_plugin_manager().detectors()[name] is cls
    loaded = imported_by(f"radar_plugins.{package}",
                         [f"radar_plugins.{package}.detector", "torch"])
    assert list(loaded.values()) == [False, False], loaded
