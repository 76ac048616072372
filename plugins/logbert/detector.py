"""The LogBERT detector (Guo et al., 2021): masked log-key prediction plus a hypersphere.

Training masks events and asks a BERT encoder to predict them, while pulling
each session's CLS (DIST) state towards a centre. Scoring masks every event once
(in a few strided passes, batched and once per distinct window: see
window_stats.py) and measures how surprised the model is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from radar import (
    FIRST_EVENT,
    MAX_NLL,
    ConfigError,
    Detector,
    EventVocab,
    KeyScoreSettings,
    NLLBaseline,
    SessionBatch,
    SessionScores,
    eval_mode,
    explain_targets,
    key_scores,
    per_session_mean,
    rule_out_specials,
)
from radar import unwrap as unwrap_as

from .config import SCORES, LogBERTConfig
from .inputs import training_mask, with_specials
from .model import LogBERTModel
from .window_stats import WindowStats, WindowStatsCache, window_stats

__all__ = ["MAX_NLL", "LogBERT"]   # MAX_NLL is radar.MAX_NLL

# Seed of the fixed validation mask, so validation losses compare across epochs.
VALIDATION_SEED = 1234


def unwrap(model: torch.nn.Module) -> LogBERTModel:
    """The LogBERTModel inside DDP / torch.compile wrappers (for its buffers)."""
    return unwrap_as(model, LogBERTModel)


class LogBERT(KeyScoreSettings, Detector):
    """BERT masked log-key prediction with a volume-of-hypersphere loss.

    Fitted by :meth:`build_model`: ``vocab_`` (decodes explanations) and ``window_``
    (events per window; checked against ``max_position_embeddings``). The training
    mask rate is this detector's own ``mask_prob`` (``models.logbert.mask_prob``).
    """

    name = "logbert"
    description = "BERT masked log-key prediction + hypersphere (Guo et al. 2021)"
    config_class = LogBERTConfig

    def __init__(self, config: LogBERTConfig | None = None):
        super().__init__(config)
        self.vocab_: EventVocab | None = None
        self.window_: int | None = None
        self.last_loss_parts: dict[str, torch.Tensor] = {}
        # Distinct windows' scoring results, for the model state that made them.
        self._window_cache = WindowStatsCache()

    def build_model(self, vocab: EventVocab, window: int) -> LogBERTModel:
        """A randomly initialised model with one embedding row per vocabulary entry."""
        config = self.config
        if config.vocab_size and len(vocab) > config.vocab_size:
            raise ConfigError(
                f"the event vocabulary has {len(vocab)} entries ({len(vocab) - FIRST_EVENT} "
                f"events + {FIRST_EVENT} specials) but model.vocab_size caps it at "
                f"{config.vocab_size}; raise model.vocab_size (0 disables the cap)")
        # data.max_seq_length counts CLS and SEP, like the user's token_ids: the data
        # layer cuts sessions into windows of max_seq_length - 2 events.
        if window > config.max_events:
            raise ConfigError(
                f"data.max_seq_length ({window + 2}) does not fit "
                f"model.max_position_embeddings ({config.max_position_embeddings}): windows "
                f"of {window} events + {config.num_specials} LogBERT special token(s) need "
                f"{window + config.num_specials} positions; set data.max_seq_length <= "
                f"{config.max_events + 2} or raise model.max_position_embeddings")
        self.vocab_, self.window_ = vocab, window
        return LogBERTModel(config, len(vocab))

    def on_epoch_end(self, model: torch.nn.Module) -> None:
        """Adopt this epoch's mean CLS state as the hypersphere centre for the next one."""
        unwrap(model).refresh_center()

    def _inputs(self, batch: SessionBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if batch.input_ids.shape[1] > self.config.max_events:
            raise ConfigError(
                f"a batch holds sessions of {batch.input_ids.shape[1]} events but "
                f"model.max_position_embeddings ({self.config.max_position_embeddings}) fits "
                f"{self.config.max_events}; set data.max_seq_length <= "
                f"{self.config.max_events + 2} (it counts CLS and SEP)")
        return with_specials(batch.input_ids, batch.lengths, self.config.append_sep,
                             self.config.predict_end)

    def _mlm_and_vhm(self, model: torch.nn.Module, batch: SessionBatch,
                     generator: torch.Generator | None, per_session: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        ids, attention, targets = self._inputs(batch)
        core = unwrap(model)
        corrupted, chosen = training_mask(ids, targets, self.config.mask_prob, core.vocab_size,
                                          generator)
        logits, cls_hidden = model(corrupted, attention, chosen)
        mlm = F.cross_entropy(rule_out_specials(logits.float()), ids[chosen],
                              reduction="none" if per_session else "mean")
        # The centre is read after the forward pass, which folded this batch into
        # the running mean (the stand-in centre before the first refresh).
        center = core.center_for_loss().detach()
        vhm = (cls_hidden.float() - center).pow(2).mean(dim=1)
        if per_session:
            return per_session_mean(mlm, chosen), vhm
        return mlm, vhm.mean()

    def training_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """MLM cross-entropy on masked events + ``vhm_weight`` * hypersphere loss."""
        mlm, vhm = self._mlm_and_vhm(model, batch, generator=None)
        self.last_loss_parts = {"mlm": mlm.detach(), "vhm": vhm.detach()}
        return mlm + self.config.vhm_weight * vhm

    def session_losses(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """Each session's MLM loss (mean over its masked events) + ``vhm_weight`` * its
        squared distance to the centre, shape (B,)."""
        mlm, vhm = self._mlm_and_vhm(model, batch, generator=None, per_session=True)
        self.last_loss_parts = {"mlm": mlm.mean().detach(), "vhm": vhm.mean().detach()}
        return mlm + self.config.vhm_weight * vhm

    def validation_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """The MLM loss alone, under a fixed seeded mask, in eval mode.

        Only the MLM part is reported so it compares directly with the training
        MLM loss (``last_loss_parts["mlm"]``), which is what the success bar uses.
        """
        generator = torch.Generator(device=batch.input_ids.device).manual_seed(VALIDATION_SEED)
        with eval_mode(model):
            mlm, _ = self._mlm_and_vhm(model, batch, generator)
        return mlm

    @torch.no_grad()
    def fit_scoring(self, model: torch.nn.Module, batches) -> None:
        """Learn each event's typical NLL in normal sessions (``event_nll_baseline``).

        Some events are normal yet unpredictable by position: heartbeats, metric
        flushes and GC lines interleaved into sessions at random points. Their raw
        NLL is high in every session, so ``max_nll`` flags normal sessions for them.
        ``max_excess_nll`` subtracts each event's median NLL over normal sessions, so
        a session stands out only where an event is surprising *for that event*.
        The histogram and median are :class:`radar.detector.baseline.NLLBaseline`, shared
        with the next-key detectors.
        """
        core = unwrap(model)
        baseline = NLLBaseline(core.vocab_size)
        with eval_mode(model):
            for batch in batches:
                ids, attention, targets = self._inputs(batch)
                stats = self._window_stats(model, ids, attention, targets)
                baseline.add(ids[targets], stats.nll[targets])
        core.event_nll_baseline.copy_(baseline.baseline())

    def score_sessions(self, model: torch.nn.Module, batch: SessionBatch) -> SessionScores:
        """Per session: max and mean NLL of its targets, miss ratio, and CLS distance.

        Targets are the events plus, with ``predict_end``, the session end (SEP).
        Each target is predicted while masked; the distance is that of the CLS state
        of those masked inputs (see :mod:`.window_stats`).
        """
        ids, attention, targets = self._inputs(batch)
        with eval_mode(model):
            stats = self._window_stats(model, ids, attention, targets)
        shared, nll = key_scores(ids, targets, stats.rank, stats.nll,
                                 unwrap(model).event_nll_baseline, self.config.top_g)
        # LogBERT offers the shared key scores less miss_count, plus the CLS distance.
        scores = {key: shared[key] for key in SCORES if key in shared}
        scores["distance"] = stats.distance
        extras = {key: value for key, value in scores.items() if key != self.config.score}
        explanations = explain_targets(ids, targets, stats.rank, nll, self.config.explain_top_k,
                                       self.vocab_)
        return SessionScores(score=scores[self.config.score], extras=extras,
                             explanations=explanations)

    def _window_stats(self, model, ids, attention, targets) -> WindowStats:
        """Rank and NLL of every target (each predicted while masked) and the CLS distance."""
        passes = min(self.config.scoring_passes, max(int(targets.sum(dim=1).max()), 1))
        return window_stats(model, unwrap(model), ids, attention, targets, passes,
                            self._window_cache)
