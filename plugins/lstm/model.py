"""LogLSTM's torch module: a bidirectional LSTM that predicts each key from both sides of it.

A forward LSTM reads the session left to right and a backward LSTM right to left.
Key ``p`` is predicted from the forward state after ``p - 1`` and the backward state
after ``p + 1``; neither has seen key ``p``. That is masked-key prediction with every
key masked once, computed in a single pass with no mask token.
"""

from __future__ import annotations

import torch
from torch import nn

from radar import PAD

from .config import LogLSTMConfig


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first ``lengths[b]`` positions of (B, T, ...) ``x``; padding stays put.

    Applying it twice gives ``x`` back, so it also maps backward outputs home.
    """
    positions = torch.arange(x.shape[1], device=x.device)[None, :]
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions,
                        positions)
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))


class LogLSTMNetwork(nn.Module):
    """Embedding, a forward and a backward LSTM, and a small MLP over both contexts."""

    def __init__(self, vocab_size: int, config: LogLSTMConfig):
        super().__init__()
        hidden, layers = config.hidden_size, config.num_layers
        between = config.dropout if layers > 1 else 0.0
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=PAD)
        self.dropout = nn.Dropout(config.dropout)
        self.forward_lstm = nn.LSTM(config.embedding_size, hidden, layers, batch_first=True,
                                    dropout=between)
        self.backward_lstm = nn.LSTM(config.embedding_size, hidden, layers, batch_first=True,
                                     dropout=between)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(),
                                  nn.Dropout(config.dropout), nn.Linear(hidden, vocab_size))

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, V) logits, one row per True in ``targets`` (see :class:`radar.detector.nextkey.NextKeyModel`)."""
        lengths = (ids != PAD).sum(dim=1)
        real = (ids != PAD)[..., None]
        x = self.dropout(self.embed(ids))
        ahead, _ = self.forward_lstm(x)                       # ahead[t] has read 0 .. t
        behind, _ = self.backward_lstm(reverse_within_length(x, lengths))
        behind = reverse_within_length(behind, lengths) * real   # behind[t] has read t .. end
        # Key p from ahead[p - 1] and behind[p + 1] (zeros past the session's end).
        after = torch.cat([behind[:, 2:], behind.new_zeros(behind.shape[0], 1, behind.shape[2])],
                          dim=1)
        context = torch.cat([ahead[:, :-1], after], dim=2)[targets[:, 1:]]
        return self.head(context)
