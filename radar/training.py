"""Training every detector of a run: train what is missing, reuse what is not, calibrate.

A detector already trained in its folder with today's model, training and data
settings on the same training day files is reused; when only the detection
settings changed it is recalibrated, not retrained. Rank 0 alone calibrates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radar.calibrate import calibrate
from radar.checkpoint import load_checkpoint, resolve_resume
from radar.config import RadarConfig, build_config
from radar.data.selection import TrainingSets, training_files
from radar.detect import make_detector
from radar.distributed import DistInfo
from radar.errors import ConfigError, RadarError
from radar.metrics_log import read_metrics
from radar.plan import describe_plan
from radar.rundir import RunDir, best_checkpoint
from radar.scoring.calibration import CALIBRATION_VERSION, Calibration
from radar.train import Trainer, TrainResult

Log = Callable[[str], None]


@dataclass
class TrainedDetector:
    name: str
    directory: Path
    result: TrainResult
    checkpoint: Path
    calibration: Calibration | None
    # Scores of the run's held-out sessions, when this run calibrated the detector
    holdout_scores: np.ndarray | None = None


def train_detector(name: str, config: RadarConfig, sets: TrainingSets, *, output_dir: Path,
                   resume: str | None, log: Log, dist_info: DistInfo,
                   device: torch.device) -> TrainResult:
    """Train detector ``name`` with the shared Trainer; checkpoints go to ``output_dir``."""
    detector = make_detector(name, config)
    if dist_info.is_main and detector.trainable:   # what is about to happen, how long it takes
        for line in describe_plan(config, sets.train.n_sessions, device, name=name,
                                  vocab=sets.vocab, n_windows=len(sets.train),
                                  mean_length=float(sets.train.window_length.mean()),
                                  world_size=dist_info.world_size):
            log(line)
    torch.manual_seed(config.training.seed)
    model = detector.build_model(sets.vocab, sets.train.window)
    extra = {"vocab": sets.vocab.state_dict(), "services": sets.train.services,
             "window": sets.train.window, "train_files": training_files(sets.train.days),
             "train_sessions": sets.train.n_sessions, "train_windows": len(sets.train)}
    trainer = Trainer(detector, model, config, sets.train, sets.validation, device=device,
                      output_dir=output_dir, dist_info=dist_info, extra_state=extra, log=log)
    log(f"{'training' if detector.trainable else 'fitting'} {name} on {sets.train.n_sessions} sessions ({len(sets.train)} windows, "
        f"vocabulary {len(sets.vocab)}), device {device}, precision {trainer.precision}")
    return trainer.fit(resume=resume)


def train_all(config: RadarConfig, sets: TrainingSets, *, resume: str | None, log: Log,
              dist_info: DistInfo, device: torch.device) -> list[TrainedDetector]:
    """Train (or reuse) and calibrate every configured detector."""
    run = RunDir.for_config(config.output_dir, config.detectors)
    trained = []

    def calibrated(checkpoint: Path) -> tuple[Calibration, np.ndarray]:
        return calibrate(checkpoint, sets, detection=config.detection, device=device,
                         batch_size=config.detection.batch_size, seed=config.training.seed,
                         log=log)

    for name in config.detectors:
        target = run.detector_dir(name)
        previous = None if resume else reusable(target, config, name, sets)
        if previous is not None:
            if previous.calibration is None and dist_info.is_main:
                log(f"{name}: reusing the trained {previous.checkpoint} (same model, training "
                    "and data settings); the detection settings or RADAR's calibration changed: "
                    "recalibrating")
                previous.calibration, previous.holdout_scores = calibrated(previous.checkpoint)
            else:
                log(f"{name}: reusing the trained and calibrated {previous.checkpoint} (same "
                    "model, training, data and detection settings); delete it to retrain")
            trained.append(previous)
            continue
        start = resolve_resume(resume, target, warn=log) if resume else None
        result = train_detector(name, config, sets, output_dir=target, resume=start, log=log,
                                dist_info=dist_info, device=device)
        if result.interrupted:
            trained.append(TrainedDetector(name, target, result, result.checkpoint, None))
            break
        checkpoint = best_checkpoint(target)
        calibration, scores = calibrated(checkpoint) if dist_info.is_main else (None, None)
        trained.append(TrainedDetector(name, target, result, checkpoint, calibration, scores))
    return trained


def reusable(target: Path, config: RadarConfig, name: str, sets: TrainingSets
             ) -> TrainedDetector | None:
    """A finished, calibrated detector in ``target`` trained with today's settings on
    the same training day files (same names, sizes and modification times).

    Its ``calibration`` is None when only the detection settings changed: the model is
    reused and the threshold must be set again.
    """
    try:
        checkpoint = best_checkpoint(target)
    except RadarError:
        return None
    payload = load_checkpoint(checkpoint, mmap=True)    # metadata only: weights stay on disk
    if payload.get("detector") != name or not payload.get("calibration"):
        return None
    if payload.get("train_files") != training_files(sets.train.days):
        return None
    try:
        old = build_config(payload["config"])
    except ConfigError:   # written by a RADAR whose config keys differ: retrain
        return None
    if (old.model_section(name)[0] != config.model_section(name)[0]
            or any(getattr(old, key) != getattr(config, key) for key in ("training", "data"))):
        return None
    # Same model: a change of detection settings (threshold method...), or of the
    # algorithm behind them, only recalibrates.
    same_detection = (old.detection == config.detection and payload["calibration"].get(
        "version", 0) == CALIBRATION_VERSION)
    val = [r for r in read_metrics(target) if r.get("kind") == "val"]
    last = val[-1] if val else {}
    result = TrainResult(step=int(payload.get("step", 0)), epoch=int(payload.get("epoch", 0)),
                         best_val_loss=min((r["val_loss"] for r in val), default=None),
                         last_train_loss=None, last_val_loss=last.get("val_loss"),
                         train_eval_loss=last.get("train_eval_loss"), interrupted=False,
                         checkpoint=checkpoint)
    return TrainedDetector(name, target, result, checkpoint,
                           Calibration.from_dict(payload["calibration"]) if same_detection
                           else None)
