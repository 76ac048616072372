"""The DeepLog detector (Du, Li, Zheng and Srikumar, CCS 2017): LSTM next-key prediction.

Everything but the network (loss, scores, explanations, the per-event NLL baseline)
is the shared :class:`radar.detector.nextkey.NextKeyDetector`.
"""

from __future__ import annotations

from radar import NextKeyDetector

from .config import DeepLogConfig
from .model import DeepLogNetwork


class DeepLog(NextKeyDetector):
    """LSTM over a sliding window of previous keys predicting the next key and the end."""

    name = "deeplog"
    description = "LSTM next-key prediction over a window of previous keys (Du et al. 2017)"
    config_class = DeepLogConfig

    def build_network(self, vocab_size: int) -> DeepLogNetwork:
        return DeepLogNetwork(vocab_size, self.config)
