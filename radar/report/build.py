"""`radar report RUN_DIR`: one shareable answer to "is it any good?" for a run.

Reads what a run left in its folder — ``config.yaml``, the split lists, each
detector's ``metrics.jsonl`` and results, the ensemble's results when there is
one — and writes ``report.json``, ``report.md`` and a self-contained
``report.html`` (plots embedded as data URIs, no network) next to them.

The run folder's layout is :class:`radar.rundir.RunDir`'s business.

Every results file is read once, streamed into a
:class:`~radar.report.digest.ResultsDigest` (counts per service and day, quality
tallies, a top-k heap, an aligned sample for the plots), so a run of tens of millions
of sessions reports in bounded memory; ``report.json``'s ``metrics.figures`` says which
figures are exact and which come from histograms or the sample.

Without a label file, ``has_error`` stands in as a *weak* label for the tables and
curves, but it never marks a precision/recall/F1 criterion met: ERROR lines are
neither necessary nor sufficient for an anomaly, and when they chose the training
sessions (``data.train_filter: no_error``) they would confirm themselves. The
report shows instead what holds without labels: the flag rate, how flagged
sessions split by ERROR lines, and the recall on injected corruptions when the run
measured it (``quality.json``).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from radar.data.labels import read_labels
from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.metrics_log import read_metrics
from radar.report.analyze import analyze
from radar.report.digest import (
    ANOMALIES,
    ERRORS,
    FLAGGED_ERRORS,
    SAMPLE_ERROR,
    SAMPLE_LABEL,
    SAMPLE_SCORE,
    ResultsDigest,
    digest_results,
)
from radar.report.evaluate import evaluation, figures
from radar.results import LabelJoin
from radar.rundir import RunDir, read_json
from radar.scoring.severity import LEVELS

TOP_N = 10
PLOT_SAMPLE = 200_000       # sessions the curves and histogram are drawn from, at most

# The user's success bar: (key, label, comparison, target). "{loss}" is the primary
# detector's training objective (LogBERT's is the MLM loss the user's bar names).
CRITERIA = (
    ("train_loss", "train {loss}", "<", 0.5),
    ("val_loss", "validation {loss}", "<", 0.6),
    ("gap", "validation - train loss gap", "<", 0.2),
    ("precision", "precision", ">", 0.8),
    ("recall", "recall", ">", 0.7),
    ("f1", "F1", ">", 0.75),
)


@dataclass
class RunLayout:
    run: RunDir
    config: dict
    final_results: Path          # the run's answer: the ensemble's, or the one detector's

    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def detectors(self) -> list[str]:
        return self.run.detectors


def find_layout(run_dir: str | Path) -> RunLayout:
    run = RunDir.open(run_dir)
    if not run.results.is_file():
        raise RadarError(f"{run.results} does not exist: the run has not scored its validation "
                         "days yet (`radar run` does; or `radar detect --output` into the folder)")
    return RunLayout(run, run.config() or {}, run.results)


WEAK_NOTE = ("not judged: without a label file this is measured against has_error, which is "
             "not ground truth (benign sessions log ERRORs, many anomalies log none)")


def criteria_table(training: dict | None, metrics: dict, detector: str, weak: bool
                   ) -> list[dict]:
    """Each success criterion with its measured value and whether it is met. Quality
    measured against weak labels (has_error) is shown but never judged: ``met`` is None."""
    values = dict(training or {})
    values.update({key: metrics.get(key) for key in ("precision", "recall", "f1")})
    loss = "MLM loss" if detector == "logbert" else f"loss ({detector})"
    rows = []
    for key, label, op, target in CRITERIA:
        value = values.get(key)
        quality = key in ("precision", "recall", "f1")
        met = None if value is None else (value < target if op == "<" else value > target)
        note = ""
        if quality and weak:
            met, note = None, WEAK_NOTE
        source = detector if not quality else ("has_error (weak)" if weak else "label file")
        rows.append({"key": key, "criterion": f"{label.format(loss=loss)} {op} {target}",
                     "target": target, "value": value, "met": met, "source": source,
                     "note": note})
    return rows


def _number(value: Any) -> bool:
    return value is None or isinstance(value, (int, float)) and not isinstance(value, bool)


def _mapping_of(check: Callable[[dict], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, dict) and all(
        isinstance(item, dict) and check(item) for item in value.values())


def _has_numbers(*keys: str) -> Callable[[dict], bool]:
    return lambda item: all(key in item and _number(item[key]) for key in keys)


# What the report reads from quality.json and summary.json: key -> is its value fine.
QUALITY_SHAPE = {"per_kind": _mapping_of(lambda item: _number(item.get("recall"))
                                         and _number(item.get("n"))),
                 "false_alarm_rate": _number, "caveat": lambda value: isinstance(value, str)}
SUMMARY_SHAPE = {"agreement": lambda value: isinstance(value, dict) and isinstance(
    value.get("flagged_by"), dict) and _mapping_of(_has_numbers(
        "agree", "jaccard_flagged", "spearman"))(value.get("pairs"))}


def checked(path: Path, shape: dict[str, Callable[[Any], bool]]) -> dict | None:
    """A run's JSON file (:func:`read_json`) whose keys the report reads have the shape the
    run writes; else one line naming the file and the key."""
    data = read_json(path)
    for key, fine in shape.items():
        if data is not None and data.get(key) is not None and not fine(data[key]):
            raise RadarError(f"{path} is damaged: {key!r} is not what `radar run` writes; "
                             "re-run the step that writes it")
    return data


def label_free_facts(final: ResultsDigest, quality: dict | None) -> dict:
    """What the run shows without any label: flag rate and how flags split by ERROR lines,
    plus the injected-corruption estimate when the run measured it."""
    totals = final.per_file.sum(axis=0)
    flagged, errors, both = (int(totals[column]) for column in (ANOMALIES, ERRORS,
                                                               FLAGGED_ERRORS))
    return {
        "sessions": final.n, "flagged": flagged,
        "flag_rate": float(flagged / max(final.n, 1)),
        "flagged_with_error": both,
        "flagged_without_error": flagged - both,
        "error_sessions": errors,
        "error_sessions_flagged": both,
        "error_sessions_not_flagged": errors - both,
        "injected": quality}


def _figures(final: ResultsDigest, *, weak: bool) -> dict:
    """Which figures are exact, which come from histograms, what the plots are drawn from."""
    drawn = final.rows.values.shape[0] if final.rows is not None else 0
    return {**figures(final.weak if weak else final.labelled),
            "plots": (f"ROC/PR curves and the score histogram are drawn from {drawn:,} of the "
                      f"{final.n:,} sessions" + (" (all)" if drawn == final.n else
                                                 " (a uniform sample)"))}


def _training_summary(records: list[dict]) -> dict | None:
    val = [r for r in records if r.get("kind") == "val"]
    train = [r for r in records if r.get("kind") == "train"]
    if not val and not train:
        return None
    out = {"steps": max((r["step"] for r in records), default=0)}
    if val:
        last = val[-1]
        out.update({"train_loss": last.get("train_eval_loss"), "val_loss": last.get("val_loss"),
                    "gap": last.get("gap"), "best_val_loss": min(r["val_loss"] for r in val)})
    elif train:
        out["train_loss"] = train[-1]["loss"]
    if train:
        out["sessions_per_s"] = float(np.mean([r["sessions_per_s"] for r in train]))
    return out


def _split(run: RunDir) -> dict:
    out = {}
    for key, which in (("train_days", "train"), ("val_days", "val")):
        path = run.split_list(which)
        out[key] = ([Path(line).name for line in path.read_text().splitlines() if line.strip()]
                    if path.is_file() else [])
    return out


def _digest(path: Path, labels: LabelJoin | None, *, keep_top: int = 0) -> ResultsDigest:
    return digest_results(path, keep_top=keep_top, quality=True, labels=labels,
                          plot_sample=PLOT_SAMPLE)


def build_report(run_dir: str | Path, *, labels_path: str | None = None,
                 with_plots: bool = True) -> tuple[dict, dict[str, bytes]]:
    """The report dict and its images (name -> PNG bytes)."""
    layout = find_layout(run_dir)
    data_cfg = layout.config.get("data") or {}
    labels_path = labels_path or data_cfg.get("label_file")
    table = read_labels(labels_path) if labels_path else None
    final = _digest(layout.final_results, LabelJoin(table) if table else None,
                    keep_top=4 * TOP_N)
    unused_labels = None
    if table is not None and (final.labelled is None or not final.labelled.labelled):
        # A label file that covers none of the reported sessions (another data set's, or
        # labels of other days) leaves the weak label; the report says so instead of
        # failing a whole run at its last step.
        unused_labels, table = str(labels_path), None
    weak = table is None
    source = str(labels_path) if table else ""
    final_eval = evaluation(final, weak=weak, label_source=source)
    final_eval["figures"] = _figures(final, weak=weak)

    detectors: dict[str, dict] = {}
    samples = {}
    training_records: dict[str, list[dict]] = {}
    for name, folder in layout.run.detector_dirs().items():
        records = read_metrics(folder)
        training_records[name] = records
        entry = {"training": _training_summary(records), "folder": str(folder)}
        path = layout.run.detector_results(name)
        if path.is_file():
            results = (final if path == layout.final_results
                       else _digest(path, LabelJoin(table) if table else None))
            entry["metrics"] = evaluation(results, weak=weak, label_source=source)
            if results.session_sequence == final.session_sequence:
                samples[name] = results.rows.values[:, SAMPLE_SCORE]
        detectors[name] = entry
    ensemble = len(layout.detectors) > 1
    if ensemble:
        samples["ensemble"] = final.rows.values[:, SAMPLE_SCORE]
    primary = layout.detectors[0]
    analysis = analyze(final, data_dir=data_cfg.get("preprocessed_dir"),
                       cache_dir=data_cfg.get("cache_dir"), top_n=TOP_N)
    report = {
        "title": f"RADAR report: {layout.run_dir.name}",
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(layout.run_dir.resolve()),
        "detectors": layout.detectors, "ensemble": ensemble,
        "data": {**_split(layout.run), "sessions": final.n,
                 "services": {name: entry["sessions"]
                              for name, entry in analysis["per_service"].items()},
                 "label_source": final_eval["label_source"], "weak_labels": weak,
                 "unused_label_file": unused_labels},
        "threshold": _threshold_info(layout, final_eval),
        "metrics": final_eval,
        "per_detector": detectors,
        "criteria": criteria_table((detectors[primary] or {}).get("training"), final_eval,
                                   primary, weak),
        "label_free": label_free_facts(final, checked(layout.run.quality, QUALITY_SHAPE)),
        "analysis": analysis,
        "agreement": (checked(layout.run.summary, SUMMARY_SHAPE) or {}).get("agreement"),
        "severity": ({"per_service": final.severity_counts("service"),
                      "per_day": final.severity_counts("day")}
                     if final.has_severity else None),
        "config": layout.config,
    }
    images: dict[str, bytes] = {}
    if with_plots:
        rows = final.rows.values
        labels = (rows[:, SAMPLE_ERROR] if weak else rows[:, SAMPLE_LABEL]).astype(np.int8)
        images = _plots(report, final, labels, rows[:, SAMPLE_SCORE], samples,
                        training_records)
    report["images"] = sorted(images)
    return report, images


def _threshold_info(layout: RunLayout, final_eval: dict) -> dict:
    """How the threshold in use was set, from the calibration files a run leaves."""
    info = {"value": final_eval["threshold"], "source": final_eval["threshold_source"]}
    calibration = read_json(layout.run.calibration)
    if calibration is not None:
        info["calibration"] = calibration
    return info


def _plots(report: dict, final: ResultsDigest, labels: np.ndarray, score: np.ndarray,
           scores: dict[str, np.ndarray], training_records: dict[str, list[dict]]
           ) -> dict[str, bytes]:
    """Every plot the data allow; one that has nothing to draw is left out. ``labels``,
    ``score`` and ``scores`` are the aligned sample's rows (all sessions up to
    ``PLOT_SAMPLE``)."""
    from radar.report import plots

    analysis = report["analysis"]
    known = labels >= 0
    jobs = {f"training_curve_{name}": (plots.training_curve, (records,), {"title": name})
            for name, records in training_records.items() if records}
    if scores:
        jobs["roc_pr"] = (plots.roc_pr_curves,
                          (labels[known], {k: v[known] for k, v in scores.items()}), {})
    jobs["score_histogram"] = (plots.score_histogram,
                               (score, labels, report["metrics"]["threshold"]), {})
    jobs["anomalies_per_service"] = (plots.anomalies_per_service,
                                     (analysis["per_service"],), {})
    if len(analysis["per_day"]) > 1:
        jobs["anomalies_per_day"] = (plots.anomalies_per_day, (analysis["per_day"],), {})
    if final.has_severity:
        jobs["severity_by_service"] = (plots.severity_by_service,
                                       (final.severity_counts("service"), list(LEVELS)), {})
    images = {}
    for name, (plot, args, kwargs) in jobs.items():
        try:
            images[name] = plot(*args, **kwargs)
        except RadarError:   # e.g. one class only, no finite scores: nothing to draw
            continue
    return images


def write_report(run_dir: str | Path, *, labels_path: str | None = None) -> dict[str, Path]:
    """Build and write report.json, report.md and report.html into ``run_dir``."""
    from radar.report.html import render_html, render_markdown

    report, images = build_report(run_dir, labels_path=labels_path)
    run = RunDir.open(run_dir)
    paths = {kind: run.report(kind) for kind in ("json", "markdown", "html")}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, default=_jsonable))
    atomic_write_text(paths["markdown"], render_markdown(report))
    atomic_write_text(paths["html"], render_html(report, images))
    return paths


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
