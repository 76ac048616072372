"""`radar report RUN_DIR`: one shareable answer to "is it any good?" for a run.

Reads what a run left in its folder — ``config.yaml``, the split lists, each
detector's ``metrics.jsonl`` and results, the ensemble's results when there is
one — and writes ``report.json``, ``report.md`` and a self-contained
``report.html`` (plots embedded as data URIs, no network) next to them.

Layout of a run folder: one detector trains into RUN_DIR itself; several train
into RUN_DIR/NAME and the ensemble's results are RUN_DIR/anomaly_results.json.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from radar.data.labels import read_labels
from radar.data.split import TRAIN_LIST, VAL_LIST
from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.metrics_log import read_metrics
from radar.report.analyze import analyze
from radar.report.evaluate import evaluate
from radar.report.results import Results, labels_for, load_results
from radar.scoring.severity import LEVELS, level_counts

RESULTS = "anomaly_results.json"
TOP_N = 10

# The user's success bar: (key, label, comparison, target).
CRITERIA = (
    ("train_loss", "train MLM loss", "<", 0.5),
    ("val_loss", "validation MLM loss", "<", 0.6),
    ("gap", "validation - train loss gap", "<", 0.2),
    ("precision", "precision", ">", 0.8),
    ("recall", "recall", ">", 0.7),
    ("f1", "F1", ">", 0.75),
)


@dataclass
class RunLayout:
    run_dir: Path
    config: dict
    detectors: list[str]
    detector_dirs: dict[str, Path]
    final_results: Path          # the run's answer: the ensemble's, or the one detector's


def find_layout(run_dir: str | Path) -> RunLayout:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RadarError(f"run folder {run_dir} does not exist; pass the output_dir of a "
                         "`radar run` or `radar train`")
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise RadarError(f"{run_dir} holds no config.yaml; is it the output_dir of a run?")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    detectors = list(config.get("detectors") or ["logbert"])
    dirs = ({detectors[0]: run_dir} if len(detectors) == 1
            else {name: run_dir / name for name in detectors})
    final = run_dir / RESULTS
    if not final.is_file():
        raise RadarError(f"{final} does not exist: the run has not scored its validation days "
                         "yet (`radar run` does; or `radar detect --output` into the folder)")
    return RunLayout(run_dir, config, detectors, dirs, final)


def criteria_table(training: dict | None, metrics: dict, detector: str, weak: bool
                   ) -> list[dict]:
    """Each success criterion with its measured value and whether it is met."""
    values = dict(training or {})
    values.update({key: metrics.get(key) for key in ("precision", "recall", "f1")})
    rows = []
    for key, label, op, target in CRITERIA:
        value = values.get(key)
        met = None if value is None else (value < target if op == "<" else value > target)
        source = detector if key in ("train_loss", "val_loss", "gap") else "final results"
        note = "weak labels (has_error)" if weak and key in ("precision", "recall", "f1") else ""
        rows.append({"key": key, "criterion": f"{label} {op} {target}", "target": target,
                     "value": value, "met": met, "source": source, "note": note})
    return rows


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


def _split(run_dir: Path) -> dict:
    out = {}
    for key, name in (("train_days", TRAIN_LIST), ("val_days", VAL_LIST)):
        path = run_dir / name
        out[key] = ([Path(line).name for line in path.read_text().splitlines() if line.strip()]
                    if path.is_file() else [])
    return out


def _same_sessions(a: Results, b: Results) -> bool:
    return (a.n == b.n and np.array_equal(a.session_id, b.session_id)
            and [a.files[i] for i in a.file] == [b.files[i] for i in b.file])


def build_report(run_dir: str | Path, *, labels_path: str | None = None,
                 with_plots: bool = True) -> tuple[dict, dict[str, bytes]]:
    """The report dict and its images (name -> PNG bytes)."""
    layout = find_layout(run_dir)
    data_cfg = layout.config.get("data") or {}
    labels_path = labels_path or data_cfg.get("label_file")
    table = read_labels(labels_path) if labels_path else None
    final = load_results(layout.final_results, keep_top=4 * TOP_N)
    labels = labels_for(final, table) if table else None
    unused_labels = None
    if labels is not None and not (labels >= 0).any():
        # A label file that covers none of the reported sessions (another data set's, or
        # labels of other days) leaves the weak label; the report says so instead of
        # failing a whole run at its last step.
        unused_labels, labels, table = str(labels_path), None, None
    source = str(labels_path) if table else ""
    final_eval = evaluate(final, labels, label_source=source)
    weak = final_eval["weak_labels"]
    eval_labels = labels if labels is not None else final.has_error.astype(np.int8)

    detectors: dict[str, dict] = {}
    scores = {}
    training_records: dict[str, list[dict]] = {}
    for name, folder in layout.detector_dirs.items():
        records = read_metrics(folder)
        training_records[name] = records
        entry = {"training": _training_summary(records), "folder": str(folder)}
        path = folder / RESULTS
        if path.is_file():
            results = final if path == layout.final_results else load_results(path)
            entry["metrics"] = evaluate(results, labels_for(results, table) if table else None,
                                        label_source=source)
            if _same_sessions(results, final):
                scores[name] = results.score
        detectors[name] = entry
    ensemble = len(layout.detectors) > 1
    if ensemble:
        scores["ensemble"] = final.score
    primary = "logbert" if "logbert" in detectors else layout.detectors[0]
    analysis = analyze(final, data_dir=data_cfg.get("preprocessed_dir"),
                       cache_dir=data_cfg.get("cache_dir"), top_n=TOP_N)
    report = {
        "title": f"RADAR report: {layout.run_dir.name}",
        "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run_dir": str(layout.run_dir.resolve()),
        "detectors": layout.detectors, "ensemble": ensemble,
        "data": {**_split(layout.run_dir), "sessions": final.n,
                 "services": {name: entry["sessions"]
                              for name, entry in analysis["per_service"].items()},
                 "label_source": final_eval["label_source"], "weak_labels": weak,
                 "unused_label_file": unused_labels},
        "threshold": _threshold_info(layout, final_eval),
        "metrics": final_eval,
        "per_detector": detectors,
        "criteria": criteria_table((detectors[primary] or {}).get("training"), final_eval,
                                   primary, weak),
        "analysis": analysis,
        "agreement": _run_summary(layout.run_dir).get("agreement"),
        "severity": ({"per_service": level_counts(final.severity, final.service,
                                                  final.services),
                      "per_day": level_counts(final.severity, final.file, final.files)}
                     if final.severity is not None else None),
        "config": layout.config,
    }
    images: dict[str, bytes] = {}
    if with_plots:
        images = _plots(report, final, eval_labels, scores, training_records)
    report["images"] = sorted(images)
    return report, images


def _run_summary(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _threshold_info(layout: RunLayout, final_eval: dict) -> dict:
    """How the threshold in use was set, from the calibration files a run leaves."""
    info = {"value": final_eval["threshold"], "source": final_eval["threshold_source"]}
    path = layout.run_dir / "calibration.json"
    if path.is_file():
        info["calibration"] = json.loads(path.read_text(encoding="utf-8"))
    return info


def _plots(report: dict, final: Results, labels: np.ndarray, scores: dict,
           training_records: dict[str, list[dict]]) -> dict[str, bytes]:
    """Every plot the data allow; one that has nothing to draw is left out."""
    from radar.report import plots

    analysis = report["analysis"]
    known = labels >= 0
    jobs = {f"training_curve_{name}": (plots.training_curve, (records,), {"title": name})
            for name, records in training_records.items() if records}
    if scores:
        jobs["roc_pr"] = (plots.roc_pr_curves,
                          (labels[known], {k: v[known] for k, v in scores.items()}), {})
    jobs["score_histogram"] = (plots.score_histogram,
                               (final.score, labels, report["metrics"]["threshold"]), {})
    jobs["anomalies_per_service"] = (plots.anomalies_per_service,
                                     (analysis["per_service"],), {})
    if len(analysis["per_day"]) > 1:
        jobs["anomalies_per_day"] = (plots.anomalies_per_day, (analysis["per_day"],), {})
    if final.severity is not None:
        counts = level_counts(final.severity, final.service, final.services)
        jobs["severity_by_service"] = (plots.severity_by_service, (counts, list(LEVELS)), {})
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
    run_dir = Path(run_dir)
    paths = {"json": run_dir / "report.json", "markdown": run_dir / "report.md",
             "html": run_dir / "report.html"}
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
