"""Detection metrics over per-session scores and labels (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall, F1, ROC-AUC, PR-AUC and confusion counts at ``score > threshold``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    predicted = scores > threshold
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    fn = int(np.sum(~predicted & labels))
    tn = int(np.sum(~predicted & ~labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < labels.sum() < labels.size
    finite = np.where(np.isfinite(scores), scores, np.nanmax(scores[np.isfinite(scores)])
                      if np.isfinite(scores).any() else 0.0)
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "roc_auc": float(roc_auc_score(labels, finite)) if both else None,
        "pr_auc": float(average_precision_score(labels, finite)) if both else None,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "n": int(labels.size), "n_anomalous": int(labels.sum()), "threshold": float(threshold),
    }
