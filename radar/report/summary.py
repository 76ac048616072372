"""The end-of-run summary: anomalies per service and, with labels, detection quality.

A run scores its days one at a time, so the summary is summed up as they go
(:class:`SummaryTally`, and :class:`AgreementTally` for several detectors), in memory
that does not grow with the sessions; see :mod:`radar.report.tally` for which figures
are exact.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table

from radar.console import data_text
from radar.report.digest import AlignedSample
from radar.report.tally import EvaluationTally

AGREEMENT_SAMPLE = 200_000     # sessions kept for the rank correlation between detectors


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


def summarize(services: list[str], service: np.ndarray, scores: np.ndarray, threshold: float,
              labels: np.ndarray | None = None, label_source: str = "") -> dict:
    """The summary of sessions already in memory (one chunk of a :class:`SummaryTally`)."""
    tally = SummaryTally(threshold)
    tally.add(services, np.asarray(service), np.asarray(scores, dtype=np.float64), labels)
    return tally.summary(label_source)


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
        """What :func:`radar.ensemble.agreement` gives, its counts over every session."""
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
    """The one call into :func:`radar.ensemble.agreement` (the rank correlation of a
    sample of sessions): a move of that API is a change here only."""
    from radar.ensemble import agreement

    columns = [sample[:, j] for j in range(len(names))]
    return agreement(list(names), columns, [float(t) for t in thresholds])


def summary_table(summary: dict) -> Table:
    has_metrics = "metrics" in summary
    table = Table(title=f"Detection summary (threshold {summary['threshold']:.4g})")
    columns = ["service", "sessions", "anomalies", "share"]
    if has_metrics:
        columns += ["precision", "recall", "F1", "ROC-AUC"]
    for column in columns:
        table.add_column(column, justify="left" if column == "service" else "right")

    def row(name: str, entry: dict) -> list[str]:
        cells = [data_text(name), str(entry["sessions"]), str(entry["anomalies"]),
                 f"{entry['anomalies'] / max(entry['sessions'], 1):.2%}"]
        if has_metrics:
            m = entry.get("metrics")
            cells += ([f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                       "-" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"] if m
                      else ["-"] * 4)
        return cells

    for name, entry in summary["per_service"].items():
        table.add_row(*row(name, entry))
    table.add_section()
    table.add_row(*row("all", summary))
    return table
