"""The ``models.tcn`` config section, validated when it is built.

Block ``i`` dilates its two causal convolutions by ``2 ** i``, so the receptive
field (keys visible to one prediction) is ``1 + 2 * (kernel_size - 1) * (2 ** num_levels - 1)``:
61 keys with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from radar import NextKeyConfig


@dataclass
class LogTCNConfig(NextKeyConfig):
    """LogTCN sizes plus the shared next-key scoring keys (``score``, ``top_g``, ...)."""

    section: ClassVar[str] = "models.tcn"

    channels: int = 64          # embedding size and width of every block
    kernel_size: int = 3
    num_levels: int = 4         # residual blocks, dilations 1, 2, 4, ...
    dropout: float = 0.1
    top_g: int = 9

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("channels", "kernel_size", "num_levels")
        self.check_dropout("dropout")

    @property
    def receptive_field(self) -> int:
        """How many keys (the predicted one's predecessors) one prediction can see."""
        return 1 + 2 * (self.kernel_size - 1) * (2 ** self.num_levels - 1)
