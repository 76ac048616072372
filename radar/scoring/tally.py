"""Tallies summed a chunk of sessions at a time, in memory that does not grow with them.

A run scores its days one chunk at a time and a results file is read the same way, so
everything its summary (summary.json) and reports need is summed up as they go:
:class:`OutcomeTally` (a run's outcome: :class:`SummaryTally` for anomalies per service and,
with labels, quality; :class:`AgreementTally` for several detectors; severity counts),
:class:`AlignedSample` (a uniform sample that lines up across files) and, below, detection
quality (:class:`QualityTally`).

**Detection quality in bounded memory: exact counts at the threshold, fine histograms beyond.**

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

from radar.data.dataset import SessionCorpus
from radar.data.selection import DayData, session_labels
from radar.scoring.calibration import cut_between
from radar.scoring.run import Outcome, RunScorer
from radar.scoring.severity import LEVELS

AGREEMENT_SAMPLE = 200_000     # sessions kept for the rank correlation between detectors
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


def _position_hash(positions: np.ndarray) -> np.ndarray:
    """splitmix64 of each position: a fixed pseudo-random order of the positions."""
    z = np.asarray(positions, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class AlignedSample:
    """At most ``size`` rows of ``width`` numbers, chosen by their position alone (the
    ``size`` positions that hash lowest): a uniform sample, all rows while no more than
    ``size`` came, and the same positions in two files of the same length, so samples of
    results files holding the same sessions line up row for row."""

    def __init__(self, size: int, width: int):
        self.size = size
        self.priority = np.zeros(0, dtype=np.uint64)
        self.position = np.zeros(0, dtype=np.int64)
        self.rows = np.zeros((0, width))

    def add(self, positions: np.ndarray, rows: np.ndarray) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        self.priority = np.concatenate([self.priority, _position_hash(positions)])
        self.position = np.concatenate([self.position, positions])
        self.rows = np.concatenate([self.rows, np.asarray(rows, dtype=np.float64)])
        if self.priority.size > self.size:
            keep = np.argpartition(self.priority, self.size - 1)[:self.size]
            self.priority, self.position = self.priority[keep], self.position[keep]
            self.rows = self.rows[keep]

    @property
    def values(self) -> np.ndarray:
        """The kept rows in position order."""
        return self.rows[np.argsort(self.position, kind="stable")]


class SummaryTally:
    """Per-service and overall counts, plus quality where labels (1/0; -1 unknown) exist,
    summed over chunks of sessions."""

    def __init__(self, threshold: float):
        self.threshold = float(threshold)
        self.counts: dict[str, list[int]] = {}          # service -> [sessions, anomalies]
        self.quality = EvaluationTally(threshold, ("per_service",))

    def add(self, services: list[str], service: np.ndarray, scores: np.ndarray,
            labels: np.ndarray | None = None) -> None:
        """Sessions of service ``services[service[i]]``; ``labels`` None: no label file."""
        flagged = scores > self.threshold
        for index in np.unique(service):
            rows = service == index
            entry = self.counts.setdefault(services[int(index)], [0, 0])
            entry[0] += int(rows.sum())
            entry[1] += int(flagged[rows].sum())
        if labels is not None:
            self.quality.add(scores, labels, {"per_service": (service, services)})

    def summary(self, label_source: str = "") -> dict:
        sessions = sum(entry[0] for entry in self.counts.values())
        summary: dict = {"threshold": self.threshold, "sessions": sessions,
                         "anomalies": sum(entry[1] for entry in self.counts.values()),
                         "per_service": {}}
        labelled = self.quality.labelled
        if labelled:
            summary["metrics"] = self.quality.overall.metrics()
            summary["label_source"] = label_source
        per_service = self.quality.groups["per_service"]
        for name in sorted(self.counts):
            entry = {"sessions": self.counts[name][0], "anomalies": self.counts[name][1]}
            if labelled and name in per_service:
                entry["metrics"] = per_service[name].metrics()
            summary["per_service"][name] = entry
        return summary


class AgreementTally:
    """How several detectors' decisions agree, summed over chunks: decision counts exact,
    the rank correlation on a uniform sample of ``AGREEMENT_SAMPLE`` sessions (all of
    them below that)."""

    def __init__(self, names: list[str], thresholds: list[float],
                 sample: int = AGREEMENT_SAMPLE):
        self.names, self.thresholds = list(names), np.asarray(thresholds, dtype=np.float64)
        d = len(names)
        self.n = 0
        self.agree = np.zeros((d, d), dtype=np.int64)
        self.both = np.zeros((d, d), dtype=np.int64)
        self.either = np.zeros((d, d), dtype=np.int64)
        self.flagged_by = np.zeros(d + 1, dtype=np.int64)
        self.sample = AlignedSample(sample, d)

    def add(self, scores: list[np.ndarray]) -> None:
        matrix = np.stack([np.asarray(s, dtype=np.float64) for s in scores], axis=1)
        flags = (matrix > self.thresholds[None, :]).astype(np.int64)
        self.sample.add(np.arange(self.n, self.n + matrix.shape[0]), matrix)
        self.n += matrix.shape[0]
        self.both += flags.T @ flags
        self.agree += (flags.T @ flags) + ((1 - flags).T @ (1 - flags))
        self.either += flags.shape[0] - (1 - flags).T @ (1 - flags)
        self.flagged_by += np.bincount(flags.sum(axis=1), minlength=len(self.names) + 1)

    def result(self) -> dict:
        """What :func:`radar.scoring.combine.agreement` gives, its counts over every session."""
        sample = self.sample.values
        correlation = (sampled_agreement(self.names, sample, self.thresholds)
                       if sample.shape[0] > 2 else None)
        pairs = {}
        for a in range(len(self.names)):
            for b in range(a + 1, len(self.names)):
                key = f"{self.names[a]}~{self.names[b]}"
                pairs[key] = {
                    "agree": float(self.agree[a, b] / self.n) if self.n else None,
                    "jaccard_flagged": (float(self.both[a, b] / self.either[a, b])
                                        if self.either[a, b] else None),
                    "spearman": correlation["pairs"][key]["spearman"] if correlation else None}
        return {"pairs": pairs,
                "flagged_by": {str(k): int(count) for k, count in enumerate(self.flagged_by)}}


def sampled_agreement(names: list[str], sample: np.ndarray, thresholds: np.ndarray) -> dict:
    """The one call into :func:`radar.scoring.combine.agreement` (the rank correlation of a
    sample of sessions): a move of that API is a change here only."""
    from radar.scoring.combine import agreement

    columns = [sample[:, j] for j in range(len(names))]
    return agreement(list(names), columns, [float(t) for t in thresholds])


class OutcomeTally:
    """What the end-of-run summary needs from the run's outcome, summed day by day: counts
    and quality per service for the run's answer and, with several detectors, for each
    member, their agreement and the severity levels."""

    def __init__(self, scorer: RunScorer):
        self.calibration = scorer.calibration
        self.scorer = scorer
        self.run = SummaryTally(self.calibration.threshold)
        self.members: dict[str, SummaryTally] = {}
        self.agreement: AgreementTally | None = None
        self.severity = np.zeros(len(LEVELS), dtype=np.int64)
        if scorer.is_ensemble:
            thresholds = [scorer.member_threshold(name) for name in scorer.names]
            self.members = {name: SummaryTally(t) for name, t in zip(scorer.names, thresholds)}
            self.agreement = AgreementTally(scorer.names, thresholds)

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def add(self, days: DayData, corpus: SessionCorpus, outcome: Outcome) -> None:
        """Fold one scored chunk in (its labels joined from ``days``)."""
        labels = session_labels(days, corpus)
        service = corpus.sessions.service
        self.run.add(corpus.services, service, outcome.score, labels)
        if self.agreement is None:
            return
        for member in outcome.members:
            self.members[member.name].add(corpus.services, service, member.results.score,
                                          labels)
        self.agreement.add([member.results.score for member in outcome.members])
        self.severity += np.bincount(outcome.severity.level.astype(np.int64),
                                     minlength=len(LEVELS))[:len(LEVELS)]

    def summary(self, label_source: str) -> dict:
        """The run's summary, and each member's when several (summary.json's content)."""
        summary = self.run.summary(label_source)
        summary["drift"] = [event.to_dict() for event in self.scorer.drift]
        if self.agreement is not None:
            summary["per_detector"] = {name: tally.summary(label_source)
                                       for name, tally in self.members.items()}
            summary["agreement"] = self.agreement.result()
            summary["severity"] = {level: int(self.severity[i])
                                   for i, level in enumerate(LEVELS)}
        return summary
