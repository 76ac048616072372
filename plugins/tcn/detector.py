"""The LogTCN detector: next-key prediction with a temporal convolutional network.

Scored like DeepLog; everything but the network (loss, scores, explanations, the
per-event NLL baseline) is the shared :class:`radar.detector.nextkey.NextKeyDetector`.
"""

from __future__ import annotations

from radar import NextKeyDetector

from .config import LogTCNConfig
from .model import LogTCNNetwork


class LogTCN(NextKeyDetector):
    """Dilated causal convolutions predicting the next key and the session end."""

    name = "tcn"
    description = "Dilated causal convolution (TCN) next-key prediction"
    config_class = LogTCNConfig

    def build_network(self, vocab_size: int) -> LogTCNNetwork:
        return LogTCNNetwork(vocab_size, self.config)
