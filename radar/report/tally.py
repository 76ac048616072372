"""Detection quality in bounded memory: exact counts at the threshold, fine histograms beyond.

A run's days are scored, and a results file is read, a chunk of sessions at a time;
:class:`QualityTally` folds each chunk of (score, label) into what the metrics need and
forgets the sessions:

- the confusion counts at ``score > threshold``, **exact**, so precision, recall and F1
  are exact;
- a histogram of the scores per label (:class:`ScoreHistogram`): disjoint score ranges,
  each with its count of normal and anomalous sessions. A new score opens a bin of its
  own unless it falls in a bin's range, so while a group holds no more distinct scores
  than ``max_bins`` the histogram *is* the data. Beyond that, neighbouring bins merge,
  cheapest first: merging costs the pairs (one normal, one anomalous session) across
  the two bins, which stop being ordered and become ties. Neighbours of one class merge
  for free, so ROC-AUC and the best-F1 cut stay exact while the sorted scores change
  class no more than ``max_bins`` times. ROC-AUC, average precision (PR-AUC) and the
  best-F1 cut come from the bins, ties counted as sklearn counts equal scores (half a
  pair for ROC-AUC); :meth:`ScoreHistogram.roc_auc_error_bound` bounds the ROC-AUC's
  error. ``tests/test_bounded_memory.py`` checks them against sklearn.

Memory is at most ``max_bins`` bins per group (32 bytes each), never the sessions.
Non-finite scores rank as the highest finite one, as
:func:`radar.report.metrics.binary_metrics` ranks them, for ROC-AUC and PR-AUC; the
best-F1 cut counts only the sessions a cut can flag (``score > cut`` never flags a NaN
or -inf score), so the best F1 reported is one a threshold reaches.
"""

from __future__ import annotations

import numpy as np

from radar.scoring.calibration import cut_between

OVERALL_BINS = 1 << 16       # the histogram of all sessions (2 MB at most)
GROUP_BINS = 1 << 12         # each service's and day file's (128 KB at most)

# Which figures of a metrics dict are exact and which come from the histograms.
EXACT = ("precision", "recall", "f1", "tp", "fp", "fn", "tn", "n", "n_anomalous")
FROM_HISTOGRAM = ("roc_auc", "pr_auc", "best_f1", "best_f1_threshold")
METHOD = ("precision, recall, F1 and the confusion counts are exact; ROC-AUC, PR-AUC and the "
          f"best-F1 cut come from score histograms of at most {OVERALL_BINS:,} bins (all "
          f"sessions) and {GROUP_BINS:,} (each service, each day), exact while the sorted "
          "scores of a group change label no more often than that; beyond, neighbouring "
          "scores of both labels share a bin and count as ties")


def histogram_note(figures: dict) -> str:
    """How exact ROC-AUC, PR-AUC and best F1 are, in words, from a ``figures`` dict
    (report.json's ``metrics.figures``, `radar evaluate --json`'s ``figures``)."""
    exact = "exact" if figures.get("histograms_exact") else (
        f"within {figures.get('roc_auc_max_error', 0):.2g} of exact (ROC-AUC)")
    return f"ROC-AUC, PR-AUC and best F1 come from bounded score histograms, {exact} here"


class ScoreHistogram:
    """Counts of normal and anomalous sessions in disjoint score ranges, at most
    ``max_bins`` of them (see the module docstring)."""

    def __init__(self, max_bins: int = GROUP_BINS) -> None:
        self.max_bins = max_bins
        self.low = np.zeros(0)                               # sorted, bins disjoint
        self.high = np.zeros(0)
        self.counts = np.zeros((0, 2), dtype=np.int64)       # normal, anomalous
        self.nonfinite = np.zeros(2, dtype=np.int64)         # normal, anomalous
        self.unflaggable = np.zeros(2, dtype=np.int64)       # of those, NaN and -inf

    @property
    def exact(self) -> bool:
        """Whether every bin still holds one distinct score."""
        return bool(np.array_equal(self.low, self.high))

    def add(self, scores: np.ndarray, anomalous: np.ndarray) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        label = np.asarray(anomalous, dtype=bool).astype(np.int64)
        finite = np.isfinite(scores)
        self.nonfinite += np.bincount(label[~finite], minlength=2)
        self.unflaggable += np.bincount(label[~finite & ~(scores > 0)], minlength=2)
        scores, label = scores[finite], label[finite]
        if not scores.size:
            return
        inside = np.searchsorted(self.low, scores, side="right") - 1
        hit = inside >= 0
        hit[hit] = scores[hit] <= self.high[inside[hit]]
        np.add.at(self.counts, (inside[hit], label[hit]), 1)
        values, where = np.unique(scores[~hit], return_inverse=True)
        fresh = np.zeros((values.size, 2), dtype=np.int64)
        np.add.at(fresh, (where, label[~hit]), 1)
        order = np.argsort(np.concatenate([self.low, values]), kind="stable")
        self.low = np.concatenate([self.low, values])[order]
        self.high = np.concatenate([self.high, values])[order]
        self.counts = np.concatenate([self.counts, fresh])[order]
        while self.low.size > self.max_bins:
            self._merge_cheapest(self.low.size - self.max_bins)

    def _merge_cheapest(self, need: int) -> None:
        """Merge about ``need`` (at least one) pairs of neighbouring bins, those whose
        merge ties the fewest (normal, anomalous) pairs first."""
        normal, anomalous = self.counts[:, 0], self.counts[:, 1]
        cost = normal[:-1] * anomalous[1:] + anomalous[:-1] * normal[1:]
        k = min(2 * need, cost.size) - 1
        chosen = cost <= np.partition(cost, k)[k]
        # No bin in two merges: within a run of chosen neighbours, every other one.
        index = np.arange(cost.size)
        run_start = np.maximum.accumulate(np.where(chosen & ~np.r_[False, chosen[:-1]],
                                                   index, 0))
        chosen &= (index - run_start) % 2 == 0
        first = np.flatnonzero(chosen)
        keep = np.ones(self.low.size, dtype=bool)
        keep[first + 1] = False
        self.counts[first] += self.counts[first + 1]
        self.high[first] = self.high[first + 1]
        self.low, self.high, self.counts = self.low[keep], self.high[keep], self.counts[keep]

    def descending(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(normal, anomalous, low, high) per bin from the highest scores down, the
        non-finite ones counted in the top bin."""
        normal, anomalous = self.counts[::-1, 0].copy(), self.counts[::-1, 1].copy()
        low, high = self.low[::-1].copy(), self.high[::-1].copy()
        if self.nonfinite.any():
            if not normal.size:
                normal, anomalous = np.zeros(1, np.int64), np.zeros(1, np.int64)
                low, high = np.full(1, np.finfo(float).max), np.full(1, np.finfo(float).max)
            normal[0] += self.nonfinite[0]
            anomalous[0] += self.nonfinite[1]
        return normal, anomalous, low, high

    def roc_auc_error_bound(self) -> float:
        """The most the ROC-AUC from these bins can differ from the exact one: half of
        the (normal, anomalous) pairs that share a bin of more than one score, over all
        such pairs."""
        merged = self.low < self.high
        tied = float((self.counts[merged, 0] * self.counts[merged, 1]).sum())
        pairs = float(self.counts[:, 0].sum() + self.nonfinite[0]) * float(
            self.counts[:, 1].sum() + self.nonfinite[1])
        return 0.5 * tied / pairs if pairs else 0.0


def curve_metrics(histogram: ScoreHistogram) -> dict:
    """ROC-AUC, average precision, best F1 and its cut from a histogram (see module)."""
    normal, anomalous, low, high = histogram.descending()
    n_pos, n_neg = int(anomalous.sum()), int(normal.sum())
    out: dict = {"roc_auc": None, "pr_auc": None}
    if n_pos and n_neg:
        below = n_neg - np.cumsum(normal)                       # negatives in lower bins
        out["roc_auc"] = float((anomalous * (below + 0.5 * normal)).sum() / (n_pos * n_neg))
    tp, fp = np.cumsum(anomalous), np.cumsum(normal)
    if n_pos and n_neg:
        precision = tp / np.maximum(tp + fp, 1)
        out["pr_auc"] = float((anomalous / n_pos * precision).sum())
    if not n_pos:
        out["best_f1"], out["best_f1_threshold"] = 0.0, float("nan")
        return out
    # The top bin holds the non-finite scores; no cut flags the NaN and -inf ones.
    flagged_tp = tp - histogram.unflaggable[1]
    f1 = 2 * flagged_tp / (flagged_tp + fp - histogram.unflaggable[0] + n_pos)
    best = int(np.argmax(f1))
    below = high[best + 1] if best + 1 < high.size else -np.inf
    out["best_f1"] = float(f1[best])
    out["best_f1_threshold"] = cut_between(low[best], below)
    return out


class QualityTally:
    """Quality of ``score > threshold`` against labels (1/0; -1 unknown), chunk by chunk."""

    def __init__(self, threshold: float, max_bins: int = GROUP_BINS):
        self.threshold = float(threshold)
        self.confusion = np.zeros(4, dtype=np.int64)   # tp, fp, fn, tn
        self.n_unlabelled = 0
        self.histogram = ScoreHistogram(max_bins)

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        labels = np.asarray(labels)
        known = labels >= 0
        self.n_unlabelled += int((~known).sum())
        scores, truth = np.asarray(scores, dtype=np.float64)[known], labels[known] == 1
        flagged = scores > self.threshold
        self.confusion += [int((flagged & truth).sum()), int((flagged & ~truth).sum()),
                           int((~flagged & truth).sum()), int((~flagged & ~truth).sum())]
        self.histogram.add(scores, truth)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    def metrics(self, *, with_best_f1: bool = False) -> dict:
        """:func:`radar.report.metrics.binary_metrics`'s dict (plus ``n_unlabelled`` and
        the best F1 when asked, as :func:`radar.report.evaluate.evaluate` gives them)."""
        tp, fp, fn, tn = (int(value) for value in self.confusion)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        curves = curve_metrics(self.histogram)
        out = {"precision": precision, "recall": recall, "f1": f1,
               "roc_auc": curves["roc_auc"], "pr_auc": curves["pr_auc"],
               "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n": self.n,
               "n_anomalous": tp + fn, "threshold": self.threshold}
        if with_best_f1:
            out["n_unlabelled"] = self.n_unlabelled
            out["best_f1"], out["best_f1_threshold"] = curves["best_f1"], curves["best_f1_threshold"]
        return out


class EvaluationTally:
    """What :func:`radar.report.evaluate.evaluate` reports, summed chunk by chunk: the
    quality overall and per group (``per_service``, ``per_day``: labelled groups only)."""

    def __init__(self, threshold: float, group_keys: tuple[str, ...] = ("per_service",
                                                                         "per_day")):
        self.threshold = float(threshold)
        self.overall = QualityTally(threshold, OVERALL_BINS)
        self.groups: dict[str, dict[str, QualityTally]] = {key: {} for key in group_keys}

    def add(self, scores: np.ndarray, labels: np.ndarray,
            groups: dict[str, tuple[np.ndarray, list[str]]]) -> None:
        """``groups[key]`` = (each session's group index, the groups' names)."""
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
        self.overall.add(scores, labels)
        labelled = labels >= 0
        for key, (group, names) in groups.items():
            table = self.groups[key]
            for index in np.unique(group[labelled]):
                rows = labelled & (group == index)
                tally = table.setdefault(names[int(index)], QualityTally(self.threshold))
                tally.add(scores[rows], labels[rows])

    @property
    def labelled(self) -> bool:
        return self.overall.n > 0

    @property
    def exact(self) -> bool:
        """Whether every curve figure is exact (no histogram had to merge scores)."""
        return self.overall.histogram.exact and all(
            tally.histogram.exact for table in self.groups.values() for tally in table.values())

    def report(self) -> dict:
        out = self.overall.metrics(with_best_f1=True)
        for key, table in self.groups.items():
            out[key] = {name: tally.metrics(with_best_f1=True) for name, tally in table.items()}
        return out
