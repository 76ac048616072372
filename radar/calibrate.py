"""Calibrating a trained detector: score normalisation, then its threshold.

Runs once after training, on the training days only: the detector learns its
score normalisation from a sample of training windows (``fit_scoring``), then
the held-out sessions are scored and ``detection.threshold_method`` sets the
threshold (:mod:`radar.scoring.calibration`). Both are stored in the checkpoint,
so ``radar detect`` and ``radar serve`` score exactly as the run did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from radar.checkpoint import load_checkpoint, save_checkpoint
from radar.data.dataset import SessionCorpus
from radar.data.selection import TrainingSets
from radar.detect import LoadedDetector, loaded_from_payload, score_corpus
from radar.detector import Detector
from radar.scoring.calibration import Calibration, set_threshold

Log = Callable[[str], None]
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
    (``detection.threshold_method``), and store both in the checkpoint. Returns the
    calibration and the scores of ``sets.holdout`` it came from (an ensemble is fitted
    on the same scores, so they are not computed twice)."""
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
