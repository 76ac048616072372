"""Shared machinery of key-prediction detectors whose network predicts every key of a session.

A :class:`NextKeyDetector` lays each session out as ``[CLS, e1 .. en, SEP]``. CLS is
the "session start" input; the targets are every event *and* the session end (SEP
after the last event): without an end target a truncated session, every event of
it normal, could not surprise the model. The plugin supplies only the network
(:meth:`NextKeyDetector.build_network`), which returns logits for each target
position from whatever context it is allowed to see: the keys before it (DeepLog,
LogTCN) or every key but itself (LogLSTM). This class supplies the loss, the
deterministic validation loss, the scores, explanations and the per-event NLL
baseline (a model buffer, so it is saved with the checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from radar.config import SectionChecks
from radar.data.vocab import CLS, SEP, EventVocab
from radar.detector import Detector, SessionBatch, SessionScores, eval_mode
from radar.detector import unwrap as unwrap_as
from radar.detector.baseline import NLLBaseline
from radar.detector.keys import (
    KEY_SCORES,
    KeyScoreSettings,
    explain_targets,
    key_scores,
    per_session_mean,
    rank_and_nll,
    rule_out_specials,
)
from radar.errors import ConfigError


@dataclass
class NextKeyConfig(SectionChecks):
    """Scoring keys every next-key detector's config has (plugins subclass this).

    ``section`` names the config section in error messages (``models.NAME``).
    """

    section: ClassVar[str] = "models.nextkey"

    # Which per-session number is the anomaly score (the others go to extras):
    # max_excess_nll, max_nll, mean_nll, miss_ratio or miss_count.
    score: str = "max_excess_nll"
    # A target is a "miss" when its true key is not among the top_g predictions.
    top_g: int = 9
    # How many of the most surprising positions each session's explanation lists.
    explain_top_k: int = 3

    def __post_init__(self) -> None:
        if self.score not in KEY_SCORES:
            raise ConfigError(f"{self.section}.score must be one of {', '.join(KEY_SCORES)}; "
                              f"got {self.score!r}")
        if self.top_g < 1:
            raise ConfigError(f"{self.section}.top_g must be >= 1, got {self.top_g}")
        if self.explain_top_k < 0:
            raise ConfigError(f"{self.section}.explain_top_k must be >= 0 (0 turns "
                              f"explanations off), got {self.explain_top_k}")


class NextKeyModel(nn.Module):
    """The plugin's network plus the per-event NLL baseline buffer.

    ``network(ids, targets)`` takes ``(B, T)`` indices laid out as
    ``[CLS, e1 .. en, SEP, PAD ..]`` and a ``(B, T)`` bool mask of target positions,
    and returns ``(N, V)`` logits, one row per target in row-major order.
    """

    def __init__(self, network: nn.Module, vocab_size: int):
        super().__init__()
        self.network = network
        self.vocab_size = vocab_size
        # Typical NLL of each target index in normal sessions (fit_scoring); zero
        # until fitted, which makes max_excess_nll equal max_nll.
        self.register_buffer("event_nll_baseline", torch.zeros(vocab_size))

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.network(ids, targets)


def session_layout(input_ids: torch.Tensor, lengths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``[CLS, e1 .. en, SEP]`` padded with 0, and the target mask (positions 1 .. n + 1).

    :returns: ``(ids, targets)``, each (B, L + 2).
    """
    batch, length = input_ids.shape
    positions = torch.arange(length + 2, device=input_ids.device)[None, :]
    ids = input_ids.new_zeros(batch, length + 2)
    ids[:, 1:length + 1] = input_ids
    events = (positions >= 1) & (positions <= lengths[:, None])
    ids = ids.masked_fill(~events, 0)            # clear stray ids past lengths
    ids[:, 0] = CLS
    ids.scatter_(1, (lengths + 1)[:, None], SEP)
    targets = events | (positions == (lengths + 1)[:, None])
    return ids, targets


def unwrap(model: torch.nn.Module) -> NextKeyModel:
    """The NextKeyModel inside DDP / torch.compile wrappers (for its buffers)."""
    return unwrap_as(model, NextKeyModel)


class NextKeyDetector(KeyScoreSettings, Detector):
    """Base class: cross-entropy over every key and the end; scores from rank and NLL.

    Subclasses set ``name``, ``description``, ``config_class`` (a
    :class:`NextKeyConfig` subclass) and implement :meth:`build_network`.
    ``vocab_`` (fitted by :meth:`build_model`) decodes explanations.
    """

    config_class: ClassVar[type] = NextKeyConfig

    def __init__(self, config: NextKeyConfig | None = None):
        super().__init__(config)
        self.vocab_: EventVocab | None = None
        self.window_: int | None = None

    def build_network(self, vocab_size: int) -> nn.Module:
        """The plugin's network for ``vocab_size`` indices (see :class:`NextKeyModel`)."""
        raise NotImplementedError

    def build_model(self, vocab: EventVocab, window: int) -> NextKeyModel:
        self.vocab_, self.window_ = vocab, window
        return NextKeyModel(self.build_network(len(vocab)), len(vocab))

    def _target_logits(self, model: nn.Module, batch: SessionBatch
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids, targets = session_layout(batch.input_ids, batch.lengths)
        return ids, targets, model(ids, targets)

    def training_loss(self, model: nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Mean cross-entropy over all targets (events and ends); PAD/CLS/MASK never predicted."""
        ids, targets, logits = self._target_logits(model, batch)
        return F.cross_entropy(rule_out_specials(logits.float()), ids[targets])

    def session_losses(self, model: nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Each session's mean cross-entropy over its targets, shape (B,)."""
        ids, targets, logits = self._target_logits(model, batch)
        loss = F.cross_entropy(rule_out_specials(logits.float()), ids[targets], reduction="none")
        return per_session_mean(loss, targets)

    def validation_loss(self, model: nn.Module, batch: SessionBatch) -> torch.Tensor:
        """The training loss in eval mode (no dropout): deterministic."""
        with eval_mode(model):
            return self.training_loss(model, batch)

    def _position_stats(self, model: nn.Module, batch: SessionBatch):
        ids, targets, logits = self._target_logits(model, batch)
        rank = torch.zeros(ids.shape, dtype=torch.long, device=ids.device)
        nll = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
        rank[targets], nll[targets] = rank_and_nll(logits, ids[targets])
        return ids, targets, rank, nll

    @torch.no_grad()
    def fit_scoring(self, model: nn.Module, batches: Iterable[SessionBatch]) -> None:
        """Learn each event's median NLL in normal sessions (``event_nll_baseline``)."""
        core = unwrap(model)
        baseline = NLLBaseline(core.vocab_size)
        with eval_mode(model):
            for batch in batches:
                ids, targets, _, nll = self._position_stats(model, batch)
                baseline.add(ids[targets], nll[targets])
        core.event_nll_baseline.copy_(baseline.baseline())

    def score_sessions(self, model: nn.Module, batch: SessionBatch) -> SessionScores:
        """``max_excess_nll``, ``max_nll``, ``mean_nll``, ``miss_ratio``, ``miss_count``."""
        with eval_mode(model):
            ids, targets, rank, nll = self._position_stats(model, batch)
        scores, nll = key_scores(ids, targets, rank, nll, unwrap(model).event_nll_baseline,
                                 self.config.top_g)
        extras = {key: value for key, value in scores.items() if key != self.config.score}
        explanations = explain_targets(ids, targets, rank, nll, self.config.explain_top_k,
                                       self.vocab_)
        return SessionScores(score=scores[self.config.score], extras=extras,
                             explanations=explanations)
