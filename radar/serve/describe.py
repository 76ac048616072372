"""What ``GET /v1/models`` reports: detectors, plugin versions, thresholds, training data.

Everything comes from the run folder the server loaded: each checkpoint's detector,
step, calibration, vocabulary and the names and sizes of the day files it was
trained on (kept from the one checkpoint read that loaded it), ``ensemble.json`` for an
ensemble, and the run's ``summary.json`` (validation-day results) when present.
Paths are given relative to the run folder: the API never tells clients where
files live on the server.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from radar import __version__
from radar.errors import RadarError
from radar.rundir import RunDir, read_json


def _plugin_versions() -> tuple[dict[str, dict], dict[str, dict]]:
    """{detector or scorer name: {"plugin": name, "version": v}} for what is installed."""
    from radar.plugins import get_plugin_manager

    detectors: dict[str, dict] = {}
    scorers: dict[str, dict] = {}
    for info in get_plugin_manager().plugin_infos():
        for name in info.detectors:
            detectors[name] = {"plugin": info.name, "version": info.version}
        for name in info.scorers:
            scorers[name] = {"plugin": info.name, "version": info.version}
    return detectors, scorers


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return Path(path).name


def _training_data(item) -> dict[str, Any]:
    """The day files, services and session counts the loaded checkpoint was trained on."""
    meta = item.training
    return {"files": [{"name": name, "bytes": size}
                      for name, size, *_ in meta.get("train_files") or []],
            "services": list(meta.get("services") or []),
            # None for checkpoints written before these were stored
            "sessions": meta.get("train_sessions"), "windows": meta.get("train_windows")}


def _detector_entry(name: str, item, run_dir: Path, versions: dict) -> dict[str, Any]:
    calibration = item.calibration.to_dict() if item.calibration else None
    training = _training_data(item)
    if calibration:
        training["calibration_sessions"] = calibration["n_sessions"]
    section, _ = item.config.model_section(name)
    return {"name": name, **versions.get(name, {"plugin": None, "version": None}),
            "checkpoint": _relative(item.checkpoint, run_dir),
            "step": item.training.get("step"), "epoch": item.training.get("epoch"),
            "threshold": calibration["threshold"] if calibration else None,
            "calibration": calibration, "model_config": dict(section or {}),
            "training_data": training}


def _validation_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        summary = read_json(RunDir(run_dir, []).summary)
    except RadarError:
        return None
    if summary is None:
        return None
    keep = ("sessions", "anomalies", "threshold", "metrics")
    return {key: summary[key] for key in keep if key in summary}


def describe_model(model, run_dir: Path) -> dict[str, Any]:
    """The ``/v1/models`` body for a loaded :class:`~radar.serve.scoring.ServingModel`."""
    detector_versions, scorer_versions = _plugin_versions()
    scorer = model.scorer
    detectors = [_detector_entry(name, item, run_dir, detector_versions)
                 for name, item in scorer.loaded.items()]
    config = scorer.config
    info: dict[str, Any] = {
        "radar_version": __version__, "kind": "ensemble" if scorer.is_ensemble else "single",
        "model": scorer.name, "device": str(model.device), "threshold": scorer.threshold,
        "window": scorer.window, "max_seq_length": config.data.max_seq_length,
        "vocab_size": len(scorer.vocab), "detectors": detectors,
        "validation": _validation_summary(run_dir), "ensemble": None,
        "calibration": scorer.calibration.to_dict()}
    if scorer.is_ensemble:
        combination = scorer.combination
        settings = asdict(combination.ensemble)
        severity = asdict(combination.severity)
        info["ensemble"] = {
            "method": settings["method"], "normalize": settings["normalize"],
            "combiner": scorer_versions.get(settings["method"]),
            "settings": settings, "severity": severity,
            "severity_scorer": scorer_versions.get(severity["scorer"])}
    return info
