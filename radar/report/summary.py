"""The end-of-run summary: anomalies per service and, with labels, detection quality."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from radar.report.metrics import binary_metrics


def summarize(services: list[str], service: np.ndarray, scores: np.ndarray, threshold: float,
              labels: np.ndarray | None = None, label_source: str = "") -> dict:
    """Per-service and overall counts, plus metrics where labels (1/0; -1 unknown) exist."""
    flagged = scores > threshold
    summary: dict = {"threshold": float(threshold), "sessions": int(scores.size),
                     "anomalies": int(flagged.sum()), "per_service": {}}
    known = labels is not None and (labels >= 0).any()
    if known:
        mask = labels >= 0
        summary["metrics"] = binary_metrics(labels[mask] == 1, scores[mask], threshold)
        summary["label_source"] = label_source
    for index, name in enumerate(services):
        rows = service == index
        if not rows.any():
            continue
        entry = {"sessions": int(rows.sum()), "anomalies": int(flagged[rows].sum())}
        if known:
            mask = rows & (labels >= 0)
            if mask.any():
                entry["metrics"] = binary_metrics(labels[mask] == 1, scores[mask], threshold)
        summary["per_service"][name] = entry
    return summary


def summary_table(summary: dict) -> Table:
    has_metrics = "metrics" in summary
    table = Table(title=f"Detection summary (threshold {summary['threshold']:.4g})")
    columns = ["service", "sessions", "anomalies", "share"]
    if has_metrics:
        columns += ["precision", "recall", "F1", "ROC-AUC"]
    for column in columns:
        table.add_column(column, justify="left" if column == "service" else "right")

    def row(name: str, entry: dict) -> list[str]:
        cells = [name, str(entry["sessions"]), str(entry["anomalies"]),
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
