"""`radar evaluate`: detection quality of a results file, overall, per service and per day.

Labels come from a label file or, without one, from ``has_error`` as a *weak*
label (an ERROR line is neither necessary nor sufficient for an anomaly); the
label source and whether it is weak travel in every output. The best-F1
threshold is reported for information only: it is chosen on the very data it is
measured on, so it is an upper bound, never the threshold in use.
"""

from __future__ import annotations

import numpy as np
from rich.table import Table

from radar.errors import RadarError
from radar.report.metrics import binary_metrics
from radar.report.results import Results
from radar.scoring.calibration import best_f1_threshold

WEAK_SOURCE = "has_error (weak label: no label file given)"


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    known = labels >= 0
    out = binary_metrics(labels[known] == 1, scores[known], threshold)
    out["n_unlabelled"] = int((~known).sum())
    out["best_f1"], out["best_f1_threshold"] = best_f1_threshold(labels[known] == 1,
                                                                 scores[known])
    return out


def evaluate(results: Results, labels: np.ndarray | None, *, label_source: str,
             threshold: float | None = None) -> dict:
    """Metrics at the threshold in use (``threshold`` or the file's own), by service and day.

    ``labels`` (1/0, -1 unknown) default to has_error as a weak label.
    """
    weak = labels is None
    if weak:
        labels = results.has_error.astype(np.int8)
        label_source = WEAK_SOURCE
    threshold_source = "--threshold"
    if threshold is None:
        threshold = results.threshold
        threshold_source = "the results file (set when it was written)"
    if threshold is None:
        raise RadarError(f"{results.path} does not record one threshold (written by an older "
                         "RADAR, or edited); pass --threshold")
    if not (labels >= 0).any():
        raise RadarError(f"no session of {results.path} has a label in {label_source}; check "
                         "that the label file belongs to these day files")
    report = _metrics(labels, results.score, threshold)
    report.update({"label_source": label_source, "weak_labels": weak,
                   "threshold_source": threshold_source, "results": str(results.path),
                   "per_service": {}, "per_day": {}})
    for groups, names, key in ((results.service, results.services, "per_service"),
                               (results.file, results.files, "per_day")):
        for index, name in enumerate(names):
            rows = (groups == index) & (labels >= 0)
            if rows.any():
                report[key][name] = _metrics(labels[rows], results.score[rows], threshold)
    return report


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def evaluation_table(report: dict, title: str = "Evaluation") -> Table:
    """Rich table: one row per service plus the overall row."""
    weak = " [bold yellow](WEAK labels: has_error)[/bold yellow]" if report["weak_labels"] else ""
    unlabelled = report["n_unlabelled"]
    coverage = (f"; {unlabelled:,} of {report['n'] + unlabelled:,} sessions have no label and "
                "are left out of every number" if unlabelled else "")
    table = Table(title=f"{title} at threshold {report['threshold']:.4g}{weak}",
                  caption=f"labels: {report['label_source']}{coverage}; best-F1 threshold is "
                          "chosen on these data (an upper bound, not for use)")
    columns = ("service", "sessions", "anomalous", "TP", "FP", "FN", "precision", "recall",
               "F1", "ROC-AUC", "PR-AUC", "best F1")
    for column in columns:
        table.add_column(column, justify="left" if column == "service" else "right")

    def row(name: str, m: dict) -> list[str]:
        return [name, str(m["n"]), str(m["n_anomalous"]), str(m["tp"]), str(m["fp"]),
                str(m["fn"])] + [_fmt(m[k]) for k in ("precision", "recall", "f1", "roc_auc",
                                                      "pr_auc", "best_f1")]

    for name, m in report["per_service"].items():
        table.add_row(*row(name, m))
    table.add_section()
    table.add_row(*row("all", report))
    return table
