"""The detector contract as plain check functions (no pytest needed to call them).

Each check takes a :class:`DetectorUnderTest` and raises ``AssertionError`` saying
what is wrong; returning means it passed. ``CONTRACT_CHECKS`` maps every check name to
its function. The opt-in quality floors (``QUALITY_CHECKS``) are separate: a detector
keeps the contract whatever its accuracy, and not every detector can see every kind of
planted anomaly.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from radar import (
    EXPLAIN_KEYS,
    EXPLAIN_KINDS,
    UNK,
    Detector,
    SessionScores,
    build_section,
    make_plugin_manager,
)
from radar.testing.sessions import (
    KINDS,
    WINDOW,
    assert_batch_independent,
    imported_by,
    make_batch,
    normal_session,
    planted_sessions,
    random_sessions,
    registering_plugin,
    train_on_grammar,
    vocab,
)

ENTRY_POINT_GROUP = "radar"


class NotApplicable(Exception):
    """The check does not apply to this detector (reported as a skip, with the reason)."""


class DetectorUnderTest:
    """One detector the checks run on: its registered name, class and config section.

    ``config`` is an instance of the class's ``config_class``, a mapping of its keys
    (validated as ``models.NAME`` is) or None for the defaults. ``detector_cls`` None
    looks the class up among the registered detectors. ``train_steps`` is how many
    optimiser steps "trained" means (a non-trainable detector is only fitted).
    """

    def __init__(self, name: str = "", detector_cls: type | None = None, config: Any = None,
                 train_steps: int = 30):
        if not name and detector_cls is None:
            raise ValueError("give the detector's registered name, its class, or both")
        self.name = name or detector_cls.name
        self._cls = detector_cls
        self.config = config
        self.train_steps = train_steps
        self._trained: tuple[Detector, torch.nn.Module] | None = None
        self._planted: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def cls(self) -> type:
        if self._cls is None:
            detectors = make_plugin_manager().detectors()
            assert self.name in detectors, (
                f"no detector {self.name!r} is registered (found {sorted(detectors)}); "
                "is its package installed?")
            self._cls = detectors[self.name]
        return self._cls

    def section(self) -> Any:
        """The detector's config section, built the way a run builds it."""
        if self.config is None or isinstance(self.config, Mapping):
            return build_section(self.cls.config_class, dict(self.config or {}),
                                 f"models.{self.name}")
        return self.config

    def build(self, seed: int = 0) -> tuple[Detector, torch.nn.Module]:
        """A fresh detector and its untrained model, every RNG seeded with ``seed``."""
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        detector = self.cls(self.section())
        return detector, detector.build_model(vocab(), WINDOW)

    def train(self, seed: int = 0, losses: list[float] | None = None
              ) -> tuple[Detector, torch.nn.Module]:
        """A detector trained ``train_steps`` steps on the grammar (fitted if it is not
        trainable), its scoring fitted, its model in eval mode."""
        detector, model = self.build(seed)
        train_on_grammar(detector, model, self.train_steps, np.random.default_rng(seed),
                         losses)
        model.eval()
        return detector, model

    def trained(self) -> tuple[Detector, torch.nn.Module]:
        """``train(0)``, done once and shared by the checks that only score."""
        if self._trained is None:
            self._trained = self.train(0)
        return self._trained

    def planted(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """``planted_scores(self, steps)``, done once per number of steps."""
        if steps not in self._planted:
            self._planted[steps] = planted_scores(self, steps)
        return self._planted[steps]

    def __repr__(self) -> str:
        return f"DetectorUnderTest({self.name!r})"


def probe_sessions(seed: int = 1) -> list[list[int]]:
    """Sessions to score: grammar sessions, random ones of 1-24 events and two with an
    unseen event (UNK), one of them a single event."""
    rng = np.random.default_rng(seed)
    sessions = [normal_session(rng) for _ in range(6)] + random_sessions(rng, 6)
    return sessions + [[5, 6, UNK, 8, 14, 15], [UNK]]


def _score(detector: Detector, model: torch.nn.Module, sessions: list[list[int]]
           ) -> SessionScores:
    with torch.no_grad():
        out = detector.score_sessions(model, make_batch(sessions))
    assert isinstance(out, SessionScores), (
        f"score_sessions returned {type(out).__name__}, not SessionScores")
    return out


def _assert_same_scores(got: SessionScores, expected: SessionScores, what: str) -> None:
    assert torch.equal(got.score, expected.score), (
        f"{what}: scores differ by up to {(got.score - expected.score).abs().max():.3g}")
    assert set(got.extras) == set(expected.extras), what
    for key, values in expected.extras.items():
        assert torch.equal(got.extras[key], values), f"{what}: extras[{key!r}] differ"


# -- the contract ---------------------------------------------------------------------

def check_registered(subject: DetectorUnderTest) -> None:
    """The plugin manager lists the detector under its name, registered by a plugin that
    an entry point of the ``radar`` group loaded (what ``pip install`` gives a user)."""
    detectors = make_plugin_manager().detectors()
    assert subject.name in detectors, (
        f"no detector {subject.name!r} is registered (found {sorted(detectors)})")
    cls = detectors[subject.name]
    if subject._cls is not None:
        assert cls is subject._cls, f"{subject.name!r} is registered as {cls!r}"
    assert isinstance(cls, type) and issubclass(cls, Detector), f"{cls!r} is not a Detector"
    assert cls.name == subject.name
    plugin_name, _ = registering_plugin(subject.name)
    entry_points = {ep.name: ep.value
                    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert plugin_name in entry_points, (
        f"{subject.name!r} is registered by {plugin_name!r}, which no entry point of the "
        f"{ENTRY_POINT_GROUP!r} group names: declare it in the package's pyproject.toml "
        "([project.entry-points.radar]) and install the package")


def check_registered_lazily(subject: DetectorUnderTest) -> None:
    """Importing the plugin's entry-point module loads neither the detector's own module
    nor torch: ``radar plugins`` and the CLI start fast with the plugin installed."""
    _, plugin = registering_plugin(subject.name)
    module, detector_module = plugin.__name__, subject.cls.__module__
    loaded = imported_by(module, [detector_module, "torch"])
    assert not loaded[detector_module], (
        f"importing {module} imports {detector_module}: import the detector inside the "
        "register_detectors hook")
    assert not loaded["torch"], f"importing {module} imports torch"


def check_trainable_flag(subject: DetectorUnderTest) -> None:
    """``trainable = True``: the model has parameters for the Trainer to train.
    ``trainable = False``: it has none; what ``fit_scoring`` learns lives in buffers
    (the Trainer runs no steps for it)."""
    _, model = subject.build()
    params = [name for name, p in model.named_parameters() if p.requires_grad]
    if subject.cls.trainable:
        assert params, "trainable = True but the model has no trainable parameters"
    else:
        assert not params, (f"trainable = False but the model has parameters {params[:5]} "
                            "that nothing would train: keep fitted state in buffers")


def check_learns(subject: DetectorUnderTest) -> None:
    """Trainable: ``training_loss`` is a finite scalar with a gradient, training steps
    change the model and the loss goes down. Not trainable: ``fit_scoring`` alone makes
    the model score (finite scores)."""
    detector, model = subject.build()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if subject.cls.trainable:
        loss = detector.training_loss(model.train(), make_batch(probe_sessions()[:6]))
        assert isinstance(loss, torch.Tensor) and loss.ndim == 0, (
            f"training_loss must return a scalar tensor, got {loss!r}")
        assert loss.requires_grad, "training_loss has no gradient"
        assert torch.isfinite(loss), f"training_loss is {loss}"
    losses: list[float] = []
    detector, model = subject.train(0, losses)
    assert np.isfinite(losses).all(), f"non-finite training losses: {losses}"
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "training and fit_scoring changed nothing in the model's state_dict"
    if subject.cls.trainable and len(losses) >= 10:
        first, last = np.mean(losses[:5]), np.mean(losses[-5:])
        assert last < first, f"the loss did not go down: {first:.4g} -> {last:.4g}"
    out = _score(detector, model, probe_sessions())
    assert torch.isfinite(out.score).all(), out.score


def check_session_losses(subject: DetectorUnderTest) -> None:
    """Optional hook: ``session_losses`` (used by ``training.trim_fraction``), where a
    detector gives it, is one finite loss per session with a gradient."""
    if not subject.cls.trainable:
        return
    detector, model = subject.build()
    batch = make_batch(probe_sessions()[:8])
    try:
        losses = detector.session_losses(model.train(), batch)
    except NotImplementedError:
        return                                       # optional: trim_fraction says so
    assert losses.shape == (len(batch),), f"session_losses shape {tuple(losses.shape)}"
    assert torch.isfinite(losses).all() and losses.requires_grad, losses


def check_score_format(subject: DetectorUnderTest) -> None:
    """``score_sessions`` returns SessionScores: a finite float score per session (unseen
    events and one-event sessions included) and each extra of shape (B,)."""
    detector, model = subject.trained()
    sessions = probe_sessions()
    out = _score(detector, model, sessions)
    assert out.score.shape == (len(sessions),), f"score shape {tuple(out.score.shape)}"
    assert out.score.is_floating_point(), out.score.dtype
    assert torch.isfinite(out.score).all(), out.score
    for name, values in out.extras.items():
        assert values.shape == (len(sessions),), f"extras[{name!r}] shape {values.shape}"
    assert isinstance(detector.score_name, str) and detector.score_name


def check_explanation_format(subject: DetectorUnderTest) -> None:
    """Explanations, if any: one list per session, each item a dict with exactly the keys
    ``EXPLAIN_KEYS``, a ``kind`` from ``EXPLAIN_KINDS`` and a position inside the session
    (``"end"`` may point just past its last event)."""
    detector, model = subject.trained()
    sessions = probe_sessions()
    out = _score(detector, model, sessions)
    if out.explanations is None:
        return
    assert len(out.explanations) == len(sessions), "one explanation list per session"
    for row, items in enumerate(out.explanations):
        for item in items:
            assert set(item) == set(EXPLAIN_KEYS), f"session {row}: keys {sorted(item)}"
            assert item["kind"] in EXPLAIN_KINDS, f"session {row}: kind {item['kind']!r}"
            assert 0 <= item["position"] <= len(sessions[row]), (
                f"session {row} ({len(sessions[row])} events): position {item['position']}")


def check_deterministic(subject: DetectorUnderTest) -> None:
    """The same seed gives the same model and the same scores; scoring twice gives the
    same scores."""
    first, again = subject.train(0), subject.train(0)
    sessions = probe_sessions()
    expected = _score(*first, sessions)
    _assert_same_scores(_score(*first, sessions), expected, "scoring twice")
    _assert_same_scores(_score(*again, sessions), expected, "training twice with seed 0")


def check_batch_independent(subject: DetectorUnderTest) -> None:
    """A session scores the same (score and extras, to 1e-5) alone as in a padded batch
    of others."""
    assert_batch_independent(*subject.trained(), extras=True)


def check_checkpoint_round_trip(subject: DetectorUnderTest) -> None:
    """Everything learned (training and ``fit_scoring``) is in the model's state dict: a
    fresh detector built from the saved config section, its model built under another
    seed and loaded from the saved weights (``weights_only``, strict) scores the same."""
    detector, model = subject.trained()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    section = subject.section()
    if dataclasses.is_dataclass(section):     # a run saves the resolved section as a mapping
        section = build_section(subject.cls.config_class, dataclasses.asdict(section),
                                f"models.{subject.name}")
        assert section == subject.section(), "the config section does not rebuild from asdict"
    torch.manual_seed(123)                     # a different initialisation to overwrite
    fresh = subject.cls(section)
    fresh_model = fresh.build_model(vocab(), WINDOW)
    buffer.seek(0)
    fresh_model.load_state_dict(torch.load(buffer, weights_only=True))
    fresh_model.eval()
    sessions = probe_sessions()
    _assert_same_scores(_score(fresh, fresh_model, sessions),
                        _score(detector, model, sessions), "after a state-dict round trip")


def check_order_flag(subject: DetectorUnderTest) -> None:
    """``order_aware = False``: a reordered session scores the same. ``order_aware =
    True``: after training, some reordering of a grammar session scores differently."""
    detector, model = subject.trained()
    rng = np.random.default_rng(2)
    sessions = [normal_session(rng) for _ in range(10)]
    shuffled = [[int(e) for e in rng.permutation(s)] for s in sessions]
    reversed_ = [s[::-1] for s in sessions]
    base = _score(detector, model, sessions).score
    others = [_score(detector, model, moved).score for moved in (shuffled, reversed_)]
    if subject.cls.order_aware:
        assert any(not torch.allclose(base, other) for other in others), (
            "order_aware = True, yet no reordering changes any score: set "
            "order_aware = False (the quality floors then skip shuffled sessions)")
    else:
        for other in others:
            torch.testing.assert_close(other, base, msg=lambda m: (
                f"order_aware = False, but a reordering changes the score: {m}"))


def check_validation_loss(subject: DetectorUnderTest) -> None:
    """``validation_loss`` on a batch is a finite scalar, the same when asked twice (in
    train mode, as the Trainer asks)."""
    detector, model = subject.trained()
    batch = make_batch(probe_sessions()[:8])
    model.train()
    try:
        first = detector.validation_loss(model, batch)
        second = detector.validation_loss(model, batch)
    finally:
        model.eval()
    assert isinstance(first, torch.Tensor) and first.ndim == 0, first
    assert torch.isfinite(first), first
    assert torch.equal(first, second), f"validation_loss changed: {first} then {second}"


CONTRACT_CHECKS: dict[str, Callable[[DetectorUnderTest], None]] = {
    "registered": check_registered,
    "registered_lazily": check_registered_lazily,
    "trainable_flag": check_trainable_flag,
    "learns": check_learns,
    "session_losses": check_session_losses,
    "score_format": check_score_format,
    "explanation_format": check_explanation_format,
    "deterministic": check_deterministic,
    "batch_independent": check_batch_independent,
    "checkpoint_round_trip": check_checkpoint_round_trip,
    "order_flag": check_order_flag,
    "validation_loss": check_validation_loss,
}


# -- opt-in quality floors ------------------------------------------------------------

def planted_scores(subject: DetectorUnderTest, steps: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Train ``steps`` steps (seed 0), then score 60 normal sessions and 20 of each
    planted kind; returns the scores and each session's kind."""
    detector, model = subject.build(0)
    rng = np.random.default_rng(0)
    train_on_grammar(detector, model, steps, rng)
    model.eval()
    sessions, kinds = planted_sessions(rng)
    return _score(detector, model, sessions).score.numpy(), np.array(kinds)


def check_detects(kind: str, scores: np.ndarray, kinds: np.ndarray, floor: float,
                  order_aware: bool = True) -> None:
    """ROC-AUC of ``kind`` sessions against normal ones is above ``floor``."""
    from sklearn.metrics import roc_auc_score

    if kind == "shuffled" and not order_aware:
        raise NotApplicable("order_aware = False: a shuffled session is invisible by design")
    picked = np.isin(kinds, ("normal", kind))
    auc = roc_auc_score(kinds[picked] == kind, scores[picked])
    assert auc > floor, f"{kind} sessions: ROC-AUC {auc:.3f}, floor {floor}"


QUALITY_CHECKS = tuple(f"detects_{kind}" for kind in KINDS)
