"""PNG plots for reports and the CLI: training curves, ROC/PR, score histograms, counts.

Every function returns PNG bytes, so the HTML report can embed them (base64) and the
CLI can write them atomically. Figures are built as plain :class:`~matplotlib.figure.Figure`
objects rendered by the Agg canvas: pyplot is never imported, so no display is touched,
the caller's matplotlib backend is left alone and nothing stays registered (no leaks).

Colours are Okabe-Ito (colour-blind safe); severity levels run from green to dark red
with falling lightness, so they also read in greyscale. A function raises
:class:`~radar.errors.RadarError` when there is nothing to draw.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from radar.errors import RadarError

DPI = 100
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, GREY = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#999999")
PALETTE = [BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, "#000000", "#F0E442"]
SEVERITY_COLOURS = {"NORMAL": "#1a9850", "LOW": "#fee08b", "MEDIUM": "#fc8d59",
                    "HIGH": "#d73027", "CRITICAL": "#67001f"}
# The success bars of the project: final train loss < 0.5, validation loss < 0.6.
TRAIN_LOSS_BAR, VAL_LOSS_BAR = 0.5, 0.6
MAX_ROWS = 40   # bar charts beyond this many rows stop being readable at report size


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _column(records: list[dict], key: str) -> np.ndarray:
    """``key`` of every record as floats; missing or non-finite values become NaN (gaps)."""
    values = np.array([r.get(key) if r.get(key) is not None else np.nan for r in records],
                      dtype=np.float64)
    values[~np.isfinite(values)] = np.nan
    return values


def training_curve(records: list[dict], title: str = "") -> bytes:
    """Train loss per log interval, validation and train-eval loss, and LR, against step.

    ``records`` are :func:`radar.metrics_log.read_metrics` entries. The success bars
    (train 0.5, validation 0.6) are dashed reference lines. The loss axis turns
    logarithmic when losses span more than a factor of ten (early vocab-sized losses
    would otherwise flatten the part that matters).
    """
    train = sorted((r for r in records if r.get("kind") == "train"), key=lambda r: r["step"])
    val = sorted((r for r in records if r.get("kind") == "val"), key=lambda r: r["step"])
    if not train and not val:
        raise RadarError("no training records to plot (expected entries with kind 'train' "
                         "or 'val', as radar train writes to metrics.jsonl)")
    has_lr = bool(train) and bool(np.isfinite(_column(train, "lr")).any())
    fig = _figure(7, 4.6 if has_lr else 4)
    if has_lr:
        loss_ax, lr_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    else:
        loss_ax, lr_ax = fig.subplots(), None
    marker = "o" if len(train) <= 1 else None
    series = []
    if train:
        series.append(_column(train, "loss"))
        loss_ax.plot([r["step"] for r in train], series[-1], color=BLUE, lw=1.2,
                     marker=marker, label="train loss (per log interval)")
    for key, colour, label in (("val_loss", VERMILLION, "validation loss"),
                               ("train_eval_loss", PURPLE, "train loss (eval mode)")):
        values = _column(val, key)
        if np.isfinite(values).any():
            series.append(values)
            loss_ax.plot([r["step"] for r in val], values, color=colour, lw=1.5, marker="o",
                         ms=3.5, label=label)
    loss_ax.axhline(TRAIN_LOSS_BAR, color=BLUE, ls="--", lw=1, alpha=0.7,
                    label=f"train bar {TRAIN_LOSS_BAR}")
    loss_ax.axhline(VAL_LOSS_BAR, color=VERMILLION, ls="--", lw=1, alpha=0.7,
                    label=f"validation bar {VAL_LOSS_BAR}")
    finite = np.concatenate(series)[np.isfinite(np.concatenate(series))] if series else []
    if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 10:
        loss_ax.set_yscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")   # 0.5, not 5x10^-1
        loss_ax.yaxis.set_major_formatter(plain)
        loss_ax.yaxis.set_minor_formatter(plain)
        loss_ax.tick_params(axis="y", which="minor", labelsize=7)
    loss_ax.set_ylabel("loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(fontsize=8, loc="upper right")
    loss_ax.set_title(title or "Training curve")
    if lr_ax is not None:
        lr_ax.plot([r["step"] for r in train], _column(train, "lr"), color=GREEN, lw=1.2,
                   marker=marker)
        lr_ax.set_ylabel("learning rate")
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        lr_ax.grid(alpha=0.3)
    (lr_ax or loss_ax).set_xlabel("step")
    return _png(fig)


def _finite_scores(scores: np.ndarray) -> np.ndarray:
    """Scores with NaN and +inf ranked as the most anomalous and -inf as the least.

    The same convention as :func:`radar.report.metrics.binary_metrics`: a broken score
    should show up, not vanish.
    """
    scores = np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    if ok.all():
        return scores
    high, low = (scores[ok].max(), scores[ok].min()) if ok.any() else (1.0, 0.0)
    return np.where(np.isneginf(scores), low, np.where(ok, scores, high))


def roc_pr_curves(labels: np.ndarray, scores: dict[str, np.ndarray]) -> bytes:
    """ROC and precision-recall curves side by side, one line per named score.

    ``labels`` are 1 (anomalous), 0 (normal) or -1 (unknown, left out); both known
    classes are needed. The AUC (ROC) and average precision (PR) are in the legends;
    a score named ``ensemble`` is drawn thick and black.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    labels = np.asarray(labels).astype(np.int64)
    known = labels >= 0
    truth = labels[known] == 1
    if not scores:
        raise RadarError("no scores to plot ROC/PR curves for")
    if truth.all() or not truth.any():
        raise RadarError(f"ROC/PR curves need both normal and anomalous labels; got "
                         f"{int(truth.sum())} anomalous of {truth.size} labelled sessions")
    fig = _figure(9, 4)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for index, (name, values) in enumerate(scores.items()):
        values = np.asarray(values)
        if values.shape != labels.shape:
            raise RadarError(f"scores {name!r} have shape {values.shape}, labels "
                             f"{labels.shape}; they must match one to one")
        values = _finite_scores(values)[known]
        style = ({"color": "black", "lw": 2.2} if name == "ensemble"
                 else {"color": PALETTE[index % len(PALETTE)], "lw": 1.4})
        fpr, tpr, _ = roc_curve(truth, values)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})", **style)
        precision, recall, _ = precision_recall_curve(truth, values)
        ap = average_precision_score(truth, values)
        pr_ax.plot(recall, precision, drawstyle="steps-post", label=f"{name} (AP {ap:.3f})",
                   **style)
    roc_ax.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="chance")
    pr_ax.axhline(truth.mean(), color=GREY, ls="--", lw=1,
                  label=f"chance ({truth.mean():.1%} anomalous)")
    for ax, (xlabel, ylabel, heading) in zip(
            (roc_ax, pr_ax), (("false positive rate", "true positive rate", "ROC"),
                              ("recall", "precision", "Precision-recall"))):
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.02), xlabel=xlabel, ylabel=ylabel,
               title=f"{heading} ({truth.size} labelled sessions)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is roc_ax else "lower left")
    return _png(fig)


def score_histogram(scores: np.ndarray, labels: np.ndarray | None, threshold: float,
                    title: str = "") -> bytes:
    """Histograms of normal, anomalous and unlabelled scores with the threshold marked.

    ``labels`` are 1/0/-1 (unknown, drawn as "unlabelled") or None (all unlabelled).
    Non-finite scores are left out and counted in the title; the y axis is logarithmic
    since anomalies are usually a small share.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = (np.full(scores.shape, -1) if labels is None
              else np.asarray(labels).astype(np.int64).ravel())
    if labels.shape != scores.shape:
        raise RadarError(f"{scores.size} scores but {labels.size} labels")
    finite = np.isfinite(scores)
    if not finite.any():
        raise RadarError(f"no finite scores to plot ({scores.size} given)")
    span = scores[finite]
    if math.isfinite(threshold):
        span = np.append(span, threshold)
    edges = np.histogram_bin_edges(span, bins=min(60, max(10, int(np.sqrt(finite.sum())))))
    fig = _figure(7, 4)
    ax = fig.subplots()
    groups = (("normal", labels == 0, BLUE), ("anomalous", labels == 1, VERMILLION),
              ("unlabelled", (labels != 0) & (labels != 1), GREY))
    for name, rows, colour in groups:
        values = scores[rows & finite]
        if values.size:
            ax.hist(values, bins=edges, color=colour, alpha=0.45, histtype="stepfilled",
                    edgecolor=colour, lw=1, label=f"{name} ({values.size})")
    flagged = int(np.sum(scores > threshold))   # NaN never compares greater: not flagged
    if math.isfinite(threshold):
        ax.axvline(threshold, color="black", ls="--", lw=1.2,
                   label=f"threshold {threshold:.4g}: {flagged} flagged "
                         f"({flagged / scores.size:.1%})")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.7)
    ax.set(xlabel="anomaly score (higher = more anomalous)", ylabel="sessions (log)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    omitted = int((~finite).sum())
    ax.set_title((title or "Score distribution")
                 + (f" ({omitted} non-finite scores not shown)" if omitted else ""))
    return _png(fig)


def _count_bars(names: list[str], counts: list[dict], title: str, note: str = "") -> bytes:
    """Horizontal bars of anomalies per row (first row on top), share annotated."""
    anomalies = np.array([int(c.get("anomalies", 0)) for c in counts])
    sessions = np.array([int(c.get("sessions", 0)) for c in counts])
    fig = _figure(7, max(2.5, 1.3 + 0.3 * len(names)))
    ax = fig.subplots()
    rows = np.arange(len(names))
    ax.barh(rows, anomalies, color=VERMILLION, height=0.7)
    ax.set_yticks(rows, names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)   # first row on top, no empty margin
    top = max(int(anomalies.max()), 1)
    ax.set_xlim(0, top * 1.35)   # room for the annotations right of the longest bar
    for row, flagged, total in zip(rows, anomalies, sessions):
        share = f"{flagged / total:.1%}" if total else "-"
        ax.text(flagged + top * 0.01, row, f"{flagged:,} / {total:,} ({share})",
                va="center", fontsize=7.5)
    ax.set_xlabel("sessions flagged (of sessions seen)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(title + (f" ({note})" if note else ""))
    return _png(fig)


def anomalies_per_service(per_service: dict[str, dict]) -> bytes:
    """Sessions flagged per service (entries hold "sessions" and "anomalies"), most first."""
    if not per_service:
        raise RadarError("no services to plot anomalies for")
    ordered = sorted(per_service.items(), key=lambda item: (-item[1].get("anomalies", 0),
                                                            item[0]))
    note = f"top {MAX_ROWS} of {len(ordered)} services" if len(ordered) > MAX_ROWS else ""
    ordered = ordered[:MAX_ROWS]
    return _count_bars([name for name, _ in ordered], [c for _, c in ordered],
                       "Anomalies per service", note)


def day_label(name: str) -> str:
    """``preprocessed_logs_2026-01-03.json`` -> ``2026-01-03`` (other names unchanged)."""
    match = re.search(r"\d{4}-\d{2}-\d{2}", name)
    return match.group(0) if match else name


def anomalies_per_day(per_day: dict[str, dict]) -> bytes:
    """Sessions flagged per day file, in date order (the latest days when there are many)."""
    if not per_day:
        raise RadarError("no days to plot anomalies for")
    ordered = sorted(per_day.items(), key=lambda item: day_label(item[0]))
    note = f"latest {MAX_ROWS} of {len(ordered)} days" if len(ordered) > MAX_ROWS else ""
    ordered = ordered[-MAX_ROWS:]
    return _count_bars([day_label(name) for name, _ in ordered], [c for _, c in ordered],
                       "Anomalies per day", note)


def _severity_colours(levels: list[str]) -> list:
    from matplotlib import colormaps

    ramp = colormaps["RdYlGn_r"]
    return [SEVERITY_COLOURS.get(level.upper(), ramp(i / max(len(levels) - 1, 1)))
            for i, level in enumerate(levels)]


def severity_by_service(counts: dict[str, dict[str, int]], levels: list[str]) -> bytes:
    """Stacked bars of severity level counts per service, levels in the order given.

    Services with the most sessions at the highest levels come first. Levels a service
    lacks count as zero; levels not in ``levels`` are ignored.
    """
    if not counts or not levels:
        raise RadarError("no severity counts to plot")
    table = {name: [int(c.get(level, 0)) for level in levels] for name, c in counts.items()}
    ordered = sorted(table, key=lambda name: ([-n for n in reversed(table[name])], name))
    note = f"top {MAX_ROWS} of {len(ordered)} services" if len(ordered) > MAX_ROWS else ""
    ordered = ordered[:MAX_ROWS]
    matrix = np.array([table[name] for name in ordered])
    fig = _figure(7, max(2.5, 1.5 + 0.3 * len(ordered)))
    ax = fig.subplots()
    rows = np.arange(len(ordered))
    left = np.zeros(len(ordered))
    for column, (level, colour) in enumerate(zip(levels, _severity_colours(levels))):
        ax.barh(rows, matrix[:, column], left=left, color=colour, height=0.7, label=level,
                edgecolor="white", lw=0.5)
        left += matrix[:, column]
    # Above-normal levels are usually slivers beside the first one: spell the total out.
    above, totals = matrix[:, 1:].sum(axis=1), matrix.sum(axis=1)
    ax.set_xlim(0, max(int(totals.max()), 1) * 1.3)
    for row, flagged, total in zip(rows, above, totals):
        share = f"{flagged / total:.1%}" if total else "-"
        ax.text(total + totals.max() * 0.01, row, f"{flagged:,} above {levels[0]} ({share})",
                va="center", fontsize=7.5)
    ax.set_yticks(rows, ordered, fontsize=8)
    ax.set_ylim(len(ordered) - 0.5, -0.5)
    ax.set_xlabel("sessions")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, ncols=min(len(levels), 5), loc="lower center",
              bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title("Severity by service" + (f" ({note})" if note else ""), pad=22)
    return _png(fig)
