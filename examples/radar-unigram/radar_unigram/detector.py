"""The unigram detector: how rare each event is overall; rare events make a session odd.

It keeps the RADAR detector contract (:class:`radar.detector.Detector`): the model
is built from the vocabulary, ``training_loss`` is the mean negative log-likelihood
of the events of normal sessions (the shared Trainer does backward, optimiser,
AMP, checkpoints), and ``score_sessions`` returns one score per session, higher =
more anomalous. It sees no order, so it finds sessions with rare or unseen events,
not shuffled or truncated ones; in an ensemble it adds a cheap, explainable signal.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from radar import MAX_NLL, UNK, Detector, EventVocab, SessionBatch, SessionScores, eval_mode, unwrap
from radar_unigram.config import UnigramConfig
from radar_unigram.model import UnigramModel


class Unigram(Detector):
    """Scores a session by the negative log-likelihood of its rarest event."""

    name = "unigram"
    description = "event frequency: NLL of the session's rarest event"
    config_class = UnigramConfig
    # The score is a function of how often each event occurs, not of their order.
    order_aware = False

    @property
    def score_name(self) -> str:
        """Results and reports name the score after the configured one."""
        return self.config.score

    @property
    def explain_top_k(self) -> int:
        """Positions each explanation keeps: ``models.unigram.explain_top_k``."""
        return self.config.explain_top_k

    def build_model(self, vocab: EventVocab, window: int) -> UnigramModel:
        # Fitted state ends in "_": the vocabulary decodes explanations to raw ids.
        self.vocab_ = vocab
        self.window_ = window
        return UnigramModel(len(vocab))

    def _position_nll(self, model: UnigramModel, batch: SessionBatch) -> torch.Tensor:
        """(B, L) NLL of each event; 0 on padding.

        An event never seen in training (UNK) has no frequency to learn: its logit only
        says how long training pushed it down. It scores RADAR's NLL cap instead, as in
        the built-in detectors, so any unseen event outranks every seen one.
        """
        nll = model(batch.input_ids)
        nll = torch.where(batch.input_ids == UNK, torch.full_like(nll, MAX_NLL), nll)
        return nll.masked_fill(~batch.attention_mask, 0.0)

    def training_loss(self, model: UnigramModel, batch: SessionBatch) -> torch.Tensor:
        """Mean NLL over every real event of the batch (a scalar)."""
        return self._position_nll(model, batch).sum() / batch.lengths.sum()

    def session_losses(self, model: UnigramModel, batch: SessionBatch) -> torch.Tensor:
        """Mean NLL of each session's events, shape (B,), for training.trim_fraction."""
        return self._position_nll(model, batch).sum(dim=1) / batch.lengths

    def score_sessions(self, model: UnigramModel, batch: SessionBatch) -> SessionScores:
        """``max_nll`` and ``mean_nll`` per session; ``config.score`` decides."""
        with eval_mode(model):
            nll = self._position_nll(model, batch)
        scores = {"max_nll": nll.amax(dim=1), "mean_nll": nll.sum(dim=1) / batch.lengths}
        extras = {key: value for key, value in scores.items() if key != self.config.score}
        return SessionScores(score=scores[self.config.score], extras=extras,
                             explanations=self._explain(model, batch, nll))

    def _explain(self, model: UnigramModel, batch: SessionBatch, nll: torch.Tensor
                 ) -> list[list[dict[str, Any]]] | None:
        """The ``explain_top_k`` rarest positions of each session, rarest first."""
        k = min(self.explain_top_k, nll.shape[1])
        if k == 0:
            return None
        # Stable sort: equal NLLs keep position order, whatever else is in the batch.
        masked = nll.masked_fill(~batch.attention_mask, -1.0)
        order = torch.sort(masked, dim=1, descending=True, stable=True).indices[:, :k]
        ids = batch.input_ids.gather(1, order)
        # Rank of each event among all indices by learned frequency (1 = most common).
        logits = unwrap(model, UnigramModel).logits.detach()
        rank = 1 + (logits[None, None, :] > logits[ids][..., None]).sum(dim=-1)
        raw = self.vocab_.decode(ids.cpu().numpy())
        explanations = []
        for row in range(len(batch)):
            items = []
            for j in range(min(k, int(batch.lengths[row]))):
                unseen = int(ids[row, j]) == UNK
                items.append({"position": int(order[row, j]),
                              "event_id": None if unseen else int(raw[row, j]),
                              "kind": "unseen" if unseen else "event",
                              "rank": None if unseen else int(rank[row, j]),
                              "probability": 0.0 if unseen
                              else math.exp(-float(masked[row, order[row, j]]))})
            explanations.append(items)
        return explanations
