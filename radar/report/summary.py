"""The end-of-run summary as a table: anomalies per service and, with labels, quality.

The summary itself (summary.json) is summed up as a run scores its days
(:class:`radar.scoring.tally.OutcomeTally`); see :mod:`radar.scoring.tally` for which
figures are exact.
"""

from __future__ import annotations

from rich.table import Table

from radar.console import data_text


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


