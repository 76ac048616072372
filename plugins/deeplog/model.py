"""DeepLog's torch module: an LSTM over the previous keys, then a linear layer to key logits.

The module knows nothing about losses or scoring (see :mod:`radar.detector.nextkey`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from radar import PAD

from .config import DeepLogConfig


class DeepLogNetwork(nn.Module):
    """Predicts the key at each target position from the ``window_size`` keys before it.

    With a window, each target's context is cut out of the session (``unfold``),
    so the LSTM sees exactly the previous ``window_size`` keys, as in the paper;
    early positions see left padding, then CLS (the session start). The distinct
    windows of a batch run as one LSTM batch of ``window_size`` steps. With
    ``window_size: 0`` one causal LSTM runs over the whole session instead.
    """

    def __init__(self, vocab_size: int, config: DeepLogConfig):
        super().__init__()
        self.window = config.window_size
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, config.num_layers,
                            batch_first=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.out = nn.Linear(config.hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, V) logits, one row per True in ``targets`` (see :class:`radar.detector.nextkey.NextKeyModel`)."""
        if self.window:
            # windows[:, p] = ids[p - w .. p - 1]: the keys before position p.
            padded = F.pad(ids, (self.window, 0), value=PAD)
            windows = padded.unfold(1, self.window, 1)[:, :ids.shape[1]][targets]
            # Log sessions repeat themselves: a batch holds ~4x fewer distinct windows
            # than targets, so each distinct window runs once and its logits are shared
            # (exact, gradients included).
            distinct, inverse = torch.unique(windows, dim=0, return_inverse=True)
            out, _ = self.lstm(self.dropout(self.embed(distinct)))
            return self.out(self.dropout(out[:, -1]))[inverse]
        out, _ = self.lstm(self.dropout(self.embed(ids)))
        hidden = out[:, :-1][targets[:, 1:]]   # the state after p - 1 predicts p
        return self.out(self.dropout(hidden))
