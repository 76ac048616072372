"""The fitted state of the count-vector detector, as torch buffers (saved in checkpoints).

The module has no parameters: :meth:`CountPCA.fit` solves for the buffers from an
(n, vocabulary) matrix of event counts, and ``forward`` scores a count matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from radar import PAD, SessionBatch


def event_counts(batch: SessionBatch, vocab_size: int) -> torch.Tensor:
    """(B, vocab_size) float counts of each vocabulary index over a batch's real positions."""
    counts = torch.zeros(len(batch), vocab_size, device=batch.input_ids.device)
    counts.scatter_add_(1, batch.input_ids, batch.attention_mask.to(torch.float32))
    counts[:, PAD] = 0.0
    return counts


class CountPCA(nn.Module):
    """Weighted, centred counts projected off the normal subspace: the SPE."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.register_buffer("weight", torch.ones(vocab_size))
        self.register_buffer("mean", torch.zeros(vocab_size))
        # Rows 0..n_components-1 span the normal subspace; the rest are zero.
        self.register_buffer("basis", torch.zeros(vocab_size, vocab_size))
        self.register_buffer("n_components", torch.zeros((), dtype=torch.long))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, counts: np.ndarray, variance: float, weighting: str) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        n = counts.shape[0]
        if weighting == "tfidf":
            holding = (counts > 0).sum(axis=0)
            weight = np.log((1.0 + n) / (1.0 + holding)) + 1.0
        else:
            weight = np.ones(counts.shape[1])
        x = counts * weight
        mean = x.mean(axis=0)
        # Right singular vectors of the centred matrix are the principal axes.
        _, singular, axes = np.linalg.svd(x - mean, full_matrices=False)
        explained = singular ** 2
        total = explained.sum()
        k = 0 if total <= 0 else int(np.searchsorted(np.cumsum(explained) / total, variance) + 1)
        k = min(k, axes.shape[0])
        basis = np.zeros((self.vocab_size, self.vocab_size))
        basis[:k] = axes[:k]
        self.weight.copy_(torch.from_numpy(weight))
        self.mean.copy_(torch.from_numpy(mean))
        self.basis.copy_(torch.from_numpy(basis))
        self.n_components.fill_(k)
        self.fitted.fill_(True)

    def residual(self, counts: torch.Tensor) -> torch.Tensor:
        """(B, V) part of each weighted, centred vector outside the normal subspace."""
        x = counts.double() * self.weight.double() - self.mean.double()
        basis = self.basis.double()
        return x - (x @ basis.T) @ basis

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        return self.residual(counts).pow(2).sum(dim=1)
