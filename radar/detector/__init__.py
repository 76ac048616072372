"""The detector contract every detector plugin implements, and the batch it receives.

A detector supplies three things: ``build_model`` (a plain ``nn.Module`` from its
config), ``training_loss`` (a scalar; the shared Trainer owns backward, AMP, DDP and
the optimiser) and ``score_sessions`` (one score per session, higher = more
anomalous). Detectors never run their own training loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from radar.data.dataset import SessionBatch  # the batch a detector receives (made there)

if TYPE_CHECKING:
    from radar.data.vocab import EventVocab

__all__ = ["Detector", "SessionBatch", "SessionScores", "eval_mode", "unwrap"]


@dataclass
class SessionScores:
    """What ``score_sessions`` returns: the anomaly score plus anything that explains it.

    ``extras`` holds alternative per-session scores (each shape (B,)) kept in the
    results for reports; ``explanations`` holds, per session, a list of the most
    surprising positions as plain dicts with the keys ``position`` (index in the
    batch row), ``event_id`` (raw id, or None), ``rank``, ``probability`` (or None)
    and ``kind`` (``"event"``, ``"unseen"`` or ``"end"``).
    """

    score: torch.Tensor                                   # (B,) float, higher = more anomalous
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    explanations: list[list[dict[str, Any]]] | None = None


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run without dropout or gradients, then restore the caller's mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def unwrap(model: torch.nn.Module, cls: type) -> Any:
    """The ``cls`` module inside DDP / torch.compile wrappers (for its buffers)."""
    while not isinstance(model, cls):
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            raise TypeError(f"expected a {cls.__name__} (possibly wrapped), got {type(model)}")
        model = inner
    return model


class Detector:
    """Base class for detector plugins.

    ``__init__`` only stores the config (an instance of ``config_class``, built from
    the detector's own section ``models.NAME``). ``build_model(vocab, window)`` gets
    what the run decided: the event vocabulary and the window (events per model input,
    ``data.max_seq_length`` less CLS and SEP). What a detector keeps from that call is
    fitted state and ends in ``_`` (``vocab_``, ``window_``); everything learned lives
    in the returned model, so it is checkpointed with it.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type] = dict
    # False: fitted in closed form by ``fit_scoring`` (count-vector detectors); the
    # Trainer then runs no steps and only saves the model it was given.
    trainable: ClassVar[bool] = True
    # False: the score ignores event order (a reordered session scores the same).
    order_aware: ClassVar[bool] = True

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.config_class()

    @property
    def score_name(self) -> str:
        """What ``score_sessions``'s ``score`` is called in results and reports."""
        return "anomaly_score"

    @property
    def explain_top_k(self) -> int:
        """How many of the most surprising positions each explanation keeps (0: none)."""
        return 3

    def build_model(self, vocab: EventVocab, window: int) -> torch.nn.Module:
        """Return a freshly initialised ``nn.Module`` for ``vocab`` whose inputs hold up to
        ``window`` events (never downloaded)."""
        raise NotImplementedError

    def training_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Return the scalar loss for one batch of normal sessions."""
        raise NotImplementedError

    def session_losses(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Optional: the training loss of each session, shape (B,). The Trainer uses it
        instead of ``training_loss`` when ``training.trim_fraction`` > 0, and averages
        all but the worst-fitted share of each batch (training that tolerates anomalies
        among the training sessions)."""
        raise NotImplementedError(f"detector {self.name!r} gives no per-session losses; "
                                  "training.trim_fraction needs them")

    def score_sessions(self, model: torch.nn.Module, batch: SessionBatch) -> SessionScores:
        """Score each session; shape (B,), higher = more anomalous, deterministic."""
        raise NotImplementedError

    def fit_scoring(self, model: torch.nn.Module, batches: Iterable[SessionBatch]) -> None:
        """Learn score normalisation from normal training sessions after training.

        Called once, before the threshold is calibrated. Whatever it learns must
        live in the model (buffers) so it is saved with the checkpoint. Default:
        nothing to learn.
        """

    def on_epoch_end(self, model: torch.nn.Module) -> None:
        """Called by the Trainer after each training epoch (e.g. to refresh a centre)."""

    def validation_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Loss reported on validation data; defaults to ``training_loss`` under no_grad."""
        return self.training_loss(model, batch)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.config!r})"
