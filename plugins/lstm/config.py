"""The ``models.lstm`` config section, validated when it is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from radar import NextKeyConfig


@dataclass
class LogLSTMConfig(NextKeyConfig):
    """LogLSTM sizes plus the shared key-prediction scoring keys (``score``, ``top_g``, ...)."""

    section: ClassVar[str] = "models.lstm"

    embedding_size: int = 64
    hidden_size: int = 64       # per direction
    num_layers: int = 1
    dropout: float = 0.1
    top_g: int = 9

    def __post_init__(self) -> None:
        super().__post_init__()
        self.check_positive("embedding_size", "hidden_size", "num_layers")
        self.check_dropout("dropout")
