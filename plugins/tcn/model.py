"""LogTCN's torch module: dilated causal convolutions (Bai, Kolter and Koltun, 2018) over keys.

Each residual block holds two causal convolutions with the same dilation, each
followed by LayerNorm over the channels and ReLU, then dropout. Causal (left) padding
means position ``t`` sees only keys ``<= t``, so padding on the right of a short
session never changes its predictions. LayerNorm rather than weight norm: it
trains stably at the demo's learning rate and keeps the state dict plain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from radar import PAD

from .config import LogTCNConfig


class CausalConv(nn.Module):
    """A dilated causal 1-D convolution over (B, T, C), written as one matrix multiply.

    Output ``t`` reads inputs ``t, t - d, .., t - (k - 1) d`` (zeros before the start).
    Stacking the shifted copies and applying one ``nn.Linear`` computes exactly a
    ``Conv1d`` with left padding, about twice as fast on CPU (forward + backward).
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.linear = nn.Linear(kernel_size * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, reach = x.shape[1], (self.kernel_size - 1) * self.dilation
        padded = F.pad(x, (0, 0, reach, 0))
        shifted = [padded[:, reach - i * self.dilation:reach - i * self.dilation + length]
                   for i in range(self.kernel_size)]
        return self.linear(torch.cat(shifted, dim=2))


class CausalBlock(nn.Module):
    """Two dilated causal convolutions with a residual connection; (B, T, C) in and out."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.convs = nn.ModuleList(CausalConv(channels, kernel_size, dilation)
                                   for _ in range(2))
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(2))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.convs
        y = F.relu(self.norms[0](first(x)))
        # One dropout per block, not per convolution: on CPU drawing the mask costs
        # as much as a convolution.
        y = self.dropout(F.relu(self.norms[1](second(y))))
        return x + y


class LogTCNNetwork(nn.Module):
    """Key embedding, ``num_levels`` causal blocks (dilations 1, 2, 4, ...), linear to logits."""

    def __init__(self, vocab_size: int, config: LogTCNConfig):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.channels, padding_idx=PAD)
        self.blocks = nn.Sequential(*(
            CausalBlock(config.channels, config.kernel_size, 2 ** level, config.dropout)
            for level in range(config.num_levels)))
        self.norm = nn.LayerNorm(config.channels)
        self.out = nn.Linear(config.channels, vocab_size)

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, V) logits, one row per True in ``targets`` (see :class:`radar.detector.nextkey.NextKeyModel`)."""
        hidden = self.norm(self.blocks(self.embed(ids)))
        return self.out(hidden[:, :-1][targets[:, 1:]])   # the state at p - 1 predicts p
