"""`radar evaluate`: detection quality of a results file, overall, per service and per day.

The file is streamed once into a :class:`~radar.report.digest.ResultsDigest` (the one
`radar report` and `radar analyze` read), so memory does not grow with the sessions:
precision, recall, F1 and the confusion counts at the threshold are exact; ROC-AUC,
PR-AUC and the best-F1 cut come from bounded score histograms, and ``figures`` in the
output says whether those were exact (see :mod:`radar.scoring.tally`).

Labels come from a label file or, without one, from ``has_error`` as a *weak*
label (an ERROR line is neither necessary nor sufficient for an anomaly); the
label source and whether it is weak travel in every output. The best-F1
threshold is reported for information only: it is chosen on the very data it is
measured on, so it is an upper bound, never the threshold in use.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from radar.console import data_text
from radar.data.labels import read_labels
from radar.errors import RadarError
from radar.report.digest import ResultsDigest, digest_results
from radar.results import LabelJoin
from radar.scoring.tally import EXACT, FROM_HISTOGRAM, METHOD, EvaluationTally, histogram_note

WEAK_SOURCE = "has_error (weak label: no label file given)"
FILE_THRESHOLD = "the results file (set when it was written)"


def evaluate(results_path: str | Path, labels_path: str | Path | None = None, *,
             threshold: float | None = None) -> dict:
    """Metrics of a results file at ``threshold`` or the file's own, by service and day,
    streamed in bounded memory; labels default to has_error as a weak label."""
    table = read_labels(labels_path) if labels_path else None
    digest = digest_results(results_path, quality=True,
                            labels=LabelJoin(table) if table is not None else None,
                            threshold=threshold)
    weak = table is None
    report = evaluation(digest, weak=weak, label_source=str(labels_path or ""))
    report["figures"] = figures(digest.weak if weak else digest.labelled)
    return report


def evaluation(digest: ResultsDigest, *, weak: bool, label_source: str) -> dict:
    """:func:`evaluate`'s dict from a digest read with ``quality=True``: against the label
    file, or ``has_error`` when ``weak``, at the digest's threshold."""
    if digest.given_threshold is None and (digest.threshold is None or digest.unjudged):
        raise RadarError(f"{digest.path} does not record one threshold (written by an older "
                         "RADAR, or edited); pass --threshold")
    tally = digest.weak if weak else digest.labelled
    if tally is None or not tally.labelled:
        raise RadarError(f"no session of {digest.path} has a label in {label_source}; check "
                         "that the label file belongs to these day files")
    report = tally.report()
    per_service, per_day = report.pop("per_service"), report.pop("per_day")
    report.update({"label_source": WEAK_SOURCE if weak else label_source, "weak_labels": weak,
                   "threshold_source": (FILE_THRESHOLD if digest.given_threshold is None
                                        else "--threshold"),
                   "results": str(digest.path), "per_service": per_service,
                   "per_day": per_day})
    return report


def figures(tally: EvaluationTally) -> dict:
    """Which figures are exact and which come from histograms, and whether the histograms
    were exact here (``metrics.figures`` of report.json, less its plots)."""
    return {"exact": list(EXACT), "from_histogram": list(FROM_HISTOGRAM), "how": METHOD,
            "histograms_exact": tally.exact,
            "roc_auc_max_error": tally.overall.histogram.roc_auc_error_bound()}


def figures_note(report: dict) -> str:
    """One line under the table: how exact ROC-AUC, PR-AUC and best F1 are here."""
    return (histogram_note(report["figures"])
            + "; precision, recall, F1 and the counts are exact.")


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
        table.add_row(*row(data_text(name), m))
    table.add_section()
    table.add_row(*row("all", report))
    return table
