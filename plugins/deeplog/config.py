"""The ``models.deeplog`` config section, validated when it is built.

Defaults are the paper's (Du et al. 2017): a window of the 10 previous keys, an
LSTM of 2 layers with 64 hidden units, and the top 9 candidates for a "miss".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from radar import ConfigError, NextKeyConfig


@dataclass
class DeepLogConfig(NextKeyConfig):
    """DeepLog sizes plus the shared next-key scoring keys (``score``, ``top_g``, ...)."""

    section: ClassVar[str] = "models.deeplog"

    # Keys the LSTM sees before each prediction (the paper's h). 0 runs one causal
    # LSTM over the whole session instead: every earlier key is context.
    window_size: int = 10
    embedding_size: int = 64
    hidden_size: int = 64
    num_layers: int = 2
    # Dropout on the embeddings, between LSTM layers and before the output layer
    # (the paper has none).
    dropout: float = 0.0
    top_g: int = 9

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("embedding_size", "hidden_size", "num_layers")
        self.check_dropout("dropout")
        if self.window_size < 0:
            raise ConfigError(f"{self.section}.window_size must be >= 0 (0: the whole session "
                              f"so far), got {self.window_size}")
