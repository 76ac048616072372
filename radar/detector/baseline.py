"""Each event's typical NLL in normal sessions: the baseline behind ``max_excess_nll``.

Some events are normal yet unpredictable by position: heartbeats, metric flushes
and GC lines interleaved into sessions at random points. Their raw NLL is high in
every session, so a "worst NLL" score flags normal sessions for them. A detector's
``fit_scoring`` feeds the NLLs of normal training sessions to :class:`NLLBaseline`
and stores :meth:`NLLBaseline.baseline` in a model buffer; ``max_excess_nll`` then
subtracts it, so a session stands out only where an event is surprising *for that
event*. Every key-prediction detector (LogBERT, DeepLog, LogLSTM, LogTCN) uses this
one implementation.
"""

from __future__ import annotations

import torch

from radar.data.vocab import UNK

# NLL given to unseen (UNK) events and the ceiling for every other position: the
# NLL of a probability of 1e-8, so one unseen event dominates a short session.
MAX_NLL = 18.420680743952367
# A fixed-size histogram per target index keeps memory independent of the data;
# an index's median is trusted once it has BASELINE_MIN_COUNT samples.
BASELINE_BINS = 256
BASELINE_MIN_COUNT = 5


class NLLBaseline:
    """Accumulates a per-target-index NLL histogram and returns each index's median."""

    def __init__(self, vocab_size: int, bins: int = BASELINE_BINS,
                 min_count: int = BASELINE_MIN_COUNT):
        self.vocab_size, self.bins, self.min_count = vocab_size, bins, min_count
        self.histogram = torch.zeros(vocab_size * bins, dtype=torch.float64)

    def add(self, target_ids: torch.Tensor, nll: torch.Tensor) -> None:
        """Record the NLL of each target: ``target_ids`` and ``nll`` are 1-D and aligned."""
        target_ids = target_ids.reshape(-1).cpu().long()
        bins = (nll.reshape(-1).detach().float().cpu() / MAX_NLL * self.bins).long()
        bins = bins.clamp(0, self.bins - 1)
        self.histogram.index_add_(0, target_ids * self.bins + bins,
                                  torch.ones(bins.numel(), dtype=torch.float64))

    def baseline(self) -> torch.Tensor:
        """(vocab_size,) float32 medians; 0 (raw NLL) for rare indices and for UNK."""
        hist = self.histogram.view(self.vocab_size, self.bins)
        counts = hist.sum(dim=1)
        median_bin = (hist.cumsum(dim=1) < (counts / 2)[:, None]).sum(dim=1)
        median = (median_bin.double() + 0.5) * MAX_NLL / self.bins
        baseline = torch.where(counts >= self.min_count, median, torch.zeros_like(median))
        if self.vocab_size > UNK:
            baseline[UNK] = 0.0
        return baseline.float()
