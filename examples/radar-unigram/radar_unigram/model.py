"""The unigram model: one learned logit per vocabulary index, nothing else."""

from __future__ import annotations

import torch
from torch import nn


class UnigramModel(nn.Module):
    """``log p(event)`` for every vocabulary index, independent of context.

    Trained by maximum likelihood, the logits converge to the log of each event's
    share of the training events; indices never seen in training (UNK, the
    specials) are pushed down, so an unseen event is the rarest of all.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Negative log-probability of each index in ``input_ids`` (same shape)."""
        log_probs = torch.log_softmax(self.logits.float(), dim=0)
        return -log_probs[input_ids]
