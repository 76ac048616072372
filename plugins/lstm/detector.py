"""The LogLSTM detector: a bidirectional LSTM predicting every key from the keys around it.

Everything but the network (loss, scores, explanations, the per-event NLL baseline)
is the shared :class:`radar.detector.nextkey.NextKeyDetector`; see README.md for why this
design rather than a next-key LSTM or LogRobust's supervised classifier.
"""

from __future__ import annotations

from radar import NextKeyDetector

from .config import LogLSTMConfig
from .model import LogLSTMNetwork


class LogLSTM(NextKeyDetector):
    """Bidirectional LSTM key prediction: each key from the keys before and after it."""

    name = "lstm"
    description = "Bidirectional LSTM predicting each key from both sides (unsupervised)"
    config_class = LogLSTMConfig

    def build_network(self, vocab_size: int) -> LogLSTMNetwork:
        return LogLSTMNetwork(vocab_size, self.config)
