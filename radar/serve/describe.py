"""What ``GET /v1/models`` reports: detectors, plugin versions, thresholds, training data.

Everything comes from the run folder the server loaded: each checkpoint's detector,
step, calibration, vocabulary and the names and sizes of the day files it was
trained on (kept from the one checkpoint read that loaded it), ``ensemble.json`` for an
ensemble, and the run's ``summary.json`` (validation-day results) when present.
Paths are given relative to the run folder: the API never tells clients where
files live on the server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from radar import __version__


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
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keep = ("sessions", "anomalies", "threshold", "metrics")
    return {key: summary[key] for key in keep if key in summary}


def describe_model(model, run_dir: Path) -> dict[str, Any]:
    """The ``/v1/models`` body for a loaded :class:`~radar.serve.scoring.ServingModel`."""
    detector_versions, scorer_versions = _plugin_versions()
    detectors = [_detector_entry(name, item, run_dir, detector_versions)
                 for name, item in model.loaded.items()]
    config = model.config
    info: dict[str, Any] = {
        "radar_version": __version__, "kind": model.kind, "model": model.name,
        "device": str(model.device), "threshold": model.threshold,
        "window": model.window, "max_seq_length": config.data.max_seq_length,
        "vocab_size": len(model.vocab), "detectors": detectors,
        "validation": _validation_summary(run_dir)}
    if model.kind == "ensemble":
        state = model.state
        info["calibration"] = state["calibration"]
        info["ensemble"] = {
            "method": state["method"], "normalize": state.get("normalize"),
            "combiner": scorer_versions.get(state["method"]),
            "settings": state.get("ensemble"), "severity": state.get("severity"),
            "severity_scorer": scorer_versions.get((state.get("severity") or {}).get("scorer"))}
    else:
        info["calibration"] = detectors[0]["calibration"]
        info["ensemble"] = None
    return info
