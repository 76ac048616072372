"""Training every detector of a run: train what is missing, reuse what is not, calibrate.

A detector already trained in its folder with today's model, training and data
settings on the same training day files is reused; when only the detection
settings changed it is recalibrated, not retrained. Rank 0 alone calibrates.

Calibration runs once after training, on the training days only: the detector learns
its score normalisation from a sample of training windows (:func:`fit_scoring`), then
the held-out sessions are scored and ``detection.threshold_method`` sets the threshold
(:mod:`radar.scoring.calibration`). Both are stored in the checkpoint, so ``radar
detect`` and ``radar serve`` score exactly as the run did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radar.checkpoint import load_checkpoint, resolve_resume, save_checkpoint
from radar.config import RadarConfig, build_config
from radar.data.dataset import SessionCorpus
from radar.data.selection import TrainingSets, training_files
from radar.detector import Detector
from radar.distributed import DistInfo
from radar.errors import ConfigError, RadarError
from radar.metrics_log import read_metrics
from radar.plan import describe_plan
from radar.plugins import make_detector
from radar.rundir import RunDir, best_checkpoint
from radar.scoring.calibration import CALIBRATION_VERSION, Calibration, set_threshold
from radar.scoring.run import LoadedDetector, loaded_from_payload, score_corpus
from radar.training.trainer import Trainer, TrainResult

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


FIT_SCORING_WINDOWS = 20000


def fit_scoring(loaded: LoadedDetector, corpus: SessionCorpus, *, batch_size: int,
                device, seed: int) -> None:
    """Let the detector learn score normalisation from a sample of training windows."""
    if type(loaded.detector).fit_scoring is Detector.fit_scoring:
        return
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(corpus), size=min(len(corpus), FIT_SCORING_WINDOWS), replace=False)
    sample = sample[np.argsort(corpus.window_length[sample], kind="stable")]
    batches = (corpus[sample[i:i + batch_size]].to(device)
               for i in range(0, sample.size, batch_size))
    loaded.detector.fit_scoring(loaded.model, batches)


def calibrate(checkpoint: Path, sets: TrainingSets, *, detection, device, batch_size: int,
              seed: int, log: Log) -> tuple[Calibration, np.ndarray]:
    """Fit score normalisation on training data, set the threshold on held-out sessions
    (``detection.threshold_method``), and store both in the checkpoint.

    The checkpoint is rewritten once, here, because it is the one file ``radar detect``,
    ``radar serve`` and ``radar watch`` load: the fitted normalisation lives in the
    model's state (e.g. the NLL baseline's buffers) and must travel with the weights and
    the threshold for them to score exactly as the run did. The run's own scoring loads
    the file back too, rather than keep the model in memory: scoring with the in-memory
    model gave scores up to 4.8e-7 away from what ``radar detect`` then gives from the
    file (measured on the demo), and tests/test_jobs.py holds run and detect equal.
    Returns the calibration and the scores of ``sets.holdout`` it came from (an ensemble
    is fitted on the same scores, so they are not computed twice)."""
    payload = load_checkpoint(checkpoint)
    loaded = loaded_from_payload(payload, checkpoint, device)
    fit_scoring(loaded, sets.train, batch_size=batch_size, device=device, seed=seed)
    held = score_corpus(loaded, sets.holdout, batch_size=batch_size, device=device).score
    calibration = set_threshold(detection, normal_scores=held[sets.holdout_normal],
                                score_name=loaded.detector.score_name,
                                holdout_scores=held, holdout_labels=sets.holdout_labels,
                                data=sets.calibration_data)
    payload["model"] = loaded.model.state_dict()
    payload["calibration"] = calibration.to_dict()
    # The stored config says which detection settings this calibration followed.
    payload["config"]["detection"] = dataclasses.asdict(detection)
    save_checkpoint(checkpoint, payload)
    log(calibration.describe())
    return calibration, held


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
