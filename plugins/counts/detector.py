"""The ``pca`` count-vector detector: a session is the vector of how often each event
occurs in it.

Fitted, not trained (``trainable = False``): the shared Trainer runs no steps for it
and saves the empty model; calibration's :meth:`fit_scoring` hands it a sample of
training windows (radar/training/fit.py), from which it solves for its state. As with
every detector, nothing tells anomalies apart without labels, so it is fitted on all
of them, anomalies included: a principal subspace that keeps 95% of the variance
is shaped by the common behaviour, not by a minority.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import numpy as np
import torch

from radar import UNK, Detector, RadarError, SessionBatch, SessionScores, unwrap

from .config import PCAConfig
from .model import CountPCA, event_counts


class EventCountPCA(Detector):
    """SPE of the tf-idf weighted count vector off the normal subspace."""

    name = "pca"
    description = ("PCA residual of event-count vectors (Xu et al. 2009); order-blind, "
                   "fitted, not trained")
    config_class = PCAConfig
    trainable: ClassVar[bool] = False
    order_aware: ClassVar[bool] = False

    @property
    def score_name(self) -> str:
        return "spe"

    @property
    def explain_top_k(self) -> int:
        return self.config.explain_top_k

    def build_model(self, vocab, window: int) -> CountPCA:
        self.vocab_, self.window_ = vocab, window
        return CountPCA(len(vocab))

    def counts(self, batch: SessionBatch) -> torch.Tensor:
        return event_counts(batch, len(self.vocab_))

    def training_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        raise RadarError(f"the {self.name} detector is fitted in closed form, not trained "
                         "with a loss")

    def validation_loss(self, model: torch.nn.Module, batch: SessionBatch) -> torch.Tensor:
        """The mean score of the batch (0 before fitting): lower fits better."""
        inner = unwrap(model, CountPCA)
        if not bool(inner.fitted):
            return torch.zeros(())
        return inner(self.counts(batch)).float().mean()

    def fit_scoring(self, model: torch.nn.Module, batches: Iterable[SessionBatch]) -> None:
        matrix = [self.counts(batch).cpu().numpy() for batch in batches]
        if not matrix:
            raise RadarError(f"no training sessions to fit the {self.name} detector on")
        unwrap(model, CountPCA).fit(np.concatenate(matrix), self.config.variance,
                                    self.config.weighting)

    def score_sessions(self, model: torch.nn.Module, batch: SessionBatch) -> SessionScores:
        inner = unwrap(model, CountPCA)
        if not bool(inner.fitted):
            raise RadarError(f"the {self.name} detector scored before it was fitted "
                             "(its checkpoint predates calibration; run radar train again)")
        contribution = inner.residual(self.counts(batch)).pow(2)
        return SessionScores(contribution.sum(dim=1).float(),
                             explanations=self._explain(batch, contribution))

    def _explain(self, batch: SessionBatch, contribution: torch.Tensor
                 ) -> list[list[dict]] | None:
        """The events with the largest share of the residual, each at its first position
        in the session (an event the session lacks has no position and is left out)."""
        k = self.explain_top_k
        if k <= 0:
            return None
        ids = batch.input_ids.cpu().numpy()
        lengths = batch.lengths.cpu().numpy()
        share = contribution / contribution.sum(dim=1, keepdim=True).clamp(min=1e-300)
        order = torch.argsort(contribution, dim=1, descending=True, stable=True).cpu().numpy()
        share = share.cpu().numpy()
        out = []
        for row in range(ids.shape[0]):
            present = ids[row, :lengths[row]]
            items = []
            for index in order[row]:
                if len(items) == k or share[row, index] <= 0:
                    break
                where = np.flatnonzero(present == index)
                if where.size == 0:
                    continue
                unseen = int(index) == UNK
                items.append({"position": int(where[0]),
                              "event_id": None if unseen else
                              int(self.vocab_.decode(np.array([index]))[0]),
                              "kind": "unseen" if unseen else "event",
                              "rank": None, "probability": None})
            out.append(items)
        return out
