"""The jobs behind `radar train`, `radar detect` and `radar run`, as library calls.

run = prepare → split → vocabulary → train → calibrate → detect on validation
days → summary. Calibration uses only normal sessions of the *training* days that
were held out from training (``data.calibration_fraction``), never the days the
run reports on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from radar.checkpoint import load_checkpoint, save_checkpoint
from radar.config import RadarConfig, save_config
from radar.console import step_progress
from radar.data.cache import (
    ERROR_BIT,
    WARN_BIT,
    PreparedDay,
    cache_dir_for,
    open_prepared,
    prepare_files,
)
from radar.data.dataset import SessionCorpus
from radar.data.files import find_day_files
from radar.data.labels import LabelTable, read_labels
from radar.data.split import split_files, write_split
from radar.data.vocab import EventVocab
from radar.detect import (
    LoadedDetector,
    iter_result_records,
    loaded_from_payload,
    make_detector,
    score_corpus,
    write_results,
)
from radar.detector import Detector
from radar.device import resolve_device
from radar.distributed import DistInfo, init_distributed
from radar.errors import ConfigError, RadarError
from radar.scoring.calibration import Calibration, check_method, set_threshold
from radar.train import Trainer, TrainResult

Log = Callable[[str], None]


@dataclass
class DayData:
    """Prepared days plus what joins them back to the source files and labels."""

    files: list[Path]
    days: list[PreparedDay]
    labels: list[np.ndarray | None] = field(default_factory=list)   # per day: 1/0/-1

    @property
    def names(self) -> list[str]:
        return [path.name for path in self.files]


def window_length(config: RadarConfig) -> int:
    """Events per model window: max_seq_length less the CLS and SEP positions."""
    return max(1, config.data.max_seq_length - 2)


def prepare_days(files: list[Path], config: RadarConfig, *, workers: int, log: Log,
                 labels: LabelTable | None = None) -> DayData:
    """Convert (or reuse) the prepared cache of ``files`` and open it."""
    results = prepare_files(files, config.data.cache_dir, workers=workers,
                            max_seq_length=config.data.max_seq_length,
                            strict=config.data.strict)
    done = sum(1 for result in results if not result.skipped)
    log(f"prepared {done} file(s), reused {len(results) - done} from {config.data.cache_dir}")
    for result in results:   # damage is never silent: say what was kept and what was not
        name = Path(result.path).name
        if result.truncated is not None:
            log(f"[yellow]warning:[/yellow] {result.truncated}; using the {result.n_sessions} "
                f"sessions before the damage in {name}")
        if result.report.n_bad:
            kinds = ", ".join(f"{kind} {n}" for kind, n in result.report.bad_counts.items())
            log(f"[yellow]warning:[/yellow] {name}: skipped {result.report.n_bad} bad "
                f"record(s) ({kinds}); `radar validate` lists them")
    days = [open_prepared(cache_dir_for(path, config.data.cache_dir)) for path in files]
    data = DayData(list(files), days)
    data.labels = [labels.lookup(path.name, np.asarray(day.session_ids), day.session_keys)
                   if labels else None for path, day in zip(files, days)]
    return data


def normal_mask(day: PreparedDay, labels: np.ndarray | None, train_filter: str) -> np.ndarray:
    """Sessions treated as normal for training and calibration."""
    flags = np.asarray(day.flags)
    if train_filter == "labels":
        if labels is None:
            raise RadarError("data.train_filter=labels needs a label file (--labels FILE)")
        return labels == 0
    if train_filter == "all":
        return np.ones(day.n_sessions, dtype=bool)
    mask = (flags & ERROR_BIT) == 0
    if train_filter == "no_error_no_warn":
        mask &= (flags & WARN_BIT) == 0
    return mask


def holdout_mask(day_index: int, n: int, fraction: float, seed: int) -> np.ndarray:
    """Deterministic per-day choice of sessions held out of training for calibration."""
    return np.random.default_rng([seed, 7919, day_index]).random(n) < fraction


def build_vocab(days: list[PreparedDay], masks: list[np.ndarray]) -> EventVocab:
    """Vocabulary of the events in the selected (training) sessions."""
    counts = np.zeros(1, dtype=np.int64)
    for day, mask in zip(days, masks):
        events = np.asarray(day.events)
        if events.size == 0:
            continue
        keep = np.repeat(mask, day.lengths)
        day_counts = np.bincount(events[keep].astype(np.int64))
        if day_counts.size > counts.size:
            day_counts[:counts.size] += counts
            counts = day_counts
        else:
            counts[:day_counts.size] += day_counts
    if not counts.any():
        raise RadarError("the training days hold no normal sessions to learn from; check "
                         "data.train_filter and the has_error share (`radar validate`)")
    return EventVocab.from_counts(counts)


@dataclass
class TrainingSets:
    train: SessionCorpus
    calibration: SessionCorpus          # held-out normal sessions of the training days
    validation: SessionCorpus | None
    vocab: EventVocab
    # Every held-out session (normal or not) and its labels, for best_f1 calibration;
    # None without a label file.
    holdout: SessionCorpus | None = None
    holdout_labels: np.ndarray | None = None


def training_sets(config: RadarConfig, train: DayData, val: DayData | None) -> TrainingSets:
    d = config.data
    normal = [normal_mask(day, labels, d.train_filter)
              for day, labels in zip(train.days, train.labels)]
    held = [holdout_mask(i, day.n_sessions, d.calibration_fraction, d.split_seed)
            for i, day in enumerate(train.days)]
    train_masks = [n & ~h for n, h in zip(normal, held)]
    vocab = build_vocab(train.days, train_masks)
    window = window_length(config)
    sets = TrainingSets(
        train=SessionCorpus(train.days, vocab, window, train_masks),
        calibration=SessionCorpus(train.days, vocab, window,
                                  [n & h for n, h in zip(normal, held)]),
        validation=None, vocab=vocab)
    if any(labels is not None for labels in train.labels):
        sets.holdout = SessionCorpus(train.days, vocab, window, held)
        sets.holdout_labels = session_labels(train, sets.holdout)
    if val is not None:
        val_masks = [normal_mask(day, labels, d.train_filter)
                     for day, labels in zip(val.days, val.labels)]
        sets.validation = SessionCorpus(val.days, vocab, window, val_masks)
    if len(sets.train) == 0:
        raise RadarError("no training sessions left after filtering; lower "
                         "data.calibration_fraction or change data.train_filter")
    return sets


def train_detector(name: str, config: RadarConfig, sets: TrainingSets, *, output_dir: Path,
                   resume: str | None, log: Log, dist_info: DistInfo | None = None,
                   device: torch.device | None = None) -> TrainResult:
    """Train detector ``name`` with the shared Trainer; checkpoints go to ``output_dir``."""
    dist_info = dist_info or DistInfo()
    device = device or resolve_device(config.training.device, dist_info.local_rank)
    torch.manual_seed(config.training.seed)
    detector = make_detector(name, config)
    model = detector.build_model(sets.vocab)
    extra = {"vocab": sets.vocab.state_dict(), "services": sets.train.services,
             "window": sets.train.window, "train_files": training_files(sets),
             "train_sessions": sets.train.n_sessions, "train_windows": len(sets.train)}
    with step_progress(config.training.total_steps, f"training {name}") as update:
        trainer = Trainer(detector, model, config, sets.train, sets.validation,
                          device=device, output_dir=output_dir, dist_info=dist_info,
                          extra_state=extra, log=log,
                          on_step=lambda t: update(t.step) if dist_info.is_main else None)
        log(f"training {name} on {sets.train.n_sessions} sessions ({len(sets.train)} "
            f"windows, vocabulary {len(sets.vocab)}), device {device}, "
            f"precision {trainer.precision}")
        return trainer.fit(resume=resume)


def best_checkpoint(output_dir: Path) -> Path:
    for name in ("best_model.pt", "last.pt"):
        if (output_dir / name).is_file():
            return output_dir / name
    raise RadarError(f"no trained checkpoint in {output_dir}")


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
              seed: int, log: Log) -> Calibration:
    """Fit score normalisation on training data, set the threshold on held-out sessions
    (``detection.threshold_method``), and store both in the checkpoint."""
    payload = load_checkpoint(checkpoint)
    loaded = loaded_from_payload(payload, checkpoint, device)
    fit_scoring(loaded, sets.train, batch_size=batch_size, device=device, seed=seed)
    normal = score_corpus(loaded, sets.calibration, batch_size=batch_size, device=device)
    holdout = None
    if detection.threshold_method == "best_f1" and sets.holdout is not None:
        holdout = score_corpus(loaded, sets.holdout, batch_size=batch_size,
                               device=device).score
    calibration = set_threshold(detection, normal_scores=normal.score,
                                score_name=score_name_of(loaded), holdout_scores=holdout,
                                holdout_labels=sets.holdout_labels)
    payload["model"] = loaded.model.state_dict()
    payload["calibration"] = calibration.to_dict()
    # The stored config says which detection settings this calibration followed.
    payload["config"]["detection"] = dataclasses.asdict(detection)
    save_checkpoint(checkpoint, payload)
    log(calibration.describe())
    return calibration


def score_name_of(loaded: LoadedDetector) -> str:
    return getattr(loaded.detector.config, "score", "anomaly_score")


def detect_days(loaded: LoadedDetector, data: DayData, output: Path, *, threshold: float,
                batch_size: int, device, fmt: str = "json") -> tuple[SessionCorpus, np.ndarray]:
    """Score every session of ``data`` and write the results file; return corpus and scores."""
    corpus = SessionCorpus(data.days, loaded.vocab, window_length(loaded.config))
    results = score_corpus(loaded, corpus, batch_size=batch_size, device=device)
    records = iter_result_records(corpus, results, threshold, data.names,
                                  [np.asarray(day.session_ids) for day in data.days],
                                  [day.session_keys for day in data.days])
    write_results(output, records, fmt)
    return corpus, results.score


def split_and_prepare(config: RadarConfig, data_dir: Path, output_dir: Path, *, workers: int,
                      labels: LabelTable | None, log: Log) -> tuple[DayData, DayData]:
    files = find_day_files(data_dir, config.data.file_pattern)
    train_files, val_files = split_files(files, val_fraction=config.data.val_fraction,
                                         method=config.data.split, seed=config.data.split_seed,
                                         limit_files=config.data.limit_files)
    write_split(train_files, val_files, output_dir)
    log(f"{len(train_files)} training day(s), {len(val_files)} validation day(s)")
    train = prepare_days(train_files, config, workers=workers, log=log, labels=labels)
    val = prepare_days(val_files, config, workers=workers, log=log, labels=labels)
    return train, val


def start_run(config: RadarConfig) -> Path:
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, output_dir)
    return output_dir


def init_device(config: RadarConfig) -> tuple[DistInfo, torch.device]:
    probe = resolve_device(config.training.device)
    dist_info = init_distributed(probe.type)
    return dist_info, resolve_device(config.training.device, dist_info.local_rank)


def load_label_table(path: str | None) -> LabelTable | None:
    return read_labels(path) if path else None


@dataclass
class TrainedDetector:
    name: str
    directory: Path
    result: TrainResult
    checkpoint: Path
    calibration: Calibration | None


def detector_dir(config: RadarConfig, name: str) -> Path:
    """One detector trains into output_dir; several each into output_dir/NAME."""
    base = Path(config.output_dir)
    return base / name if len(config.detectors) > 1 else base


def train_all(config: RadarConfig, sets: TrainingSets, *, resume: str | None, log: Log,
              dist_info: DistInfo, device: torch.device) -> list[TrainedDetector]:
    """Train and calibrate every configured detector (rank 0 calibrates)."""
    from radar.checkpoint import resolve_resume

    trained = []
    for name in config.detectors:
        target = detector_dir(config, name)
        previous = None if resume else reusable(target, config, name, sets)
        if previous is not None:
            if previous.calibration is None and dist_info.is_main:
                log(f"{name}: reusing the trained {previous.checkpoint} (same model, training "
                    "and data settings); only the detection settings changed: recalibrating")
                previous.calibration = calibrate(
                    previous.checkpoint, sets, detection=config.detection, device=device,
                    batch_size=config.detection.batch_size, seed=config.training.seed, log=log)
            else:
                log(f"{name}: reusing the trained and calibrated {previous.checkpoint} (same "
                    "model, training, data and detection settings); delete it to retrain")
            trained.append(previous)
            continue
        start = resolve_resume(resume, target) if resume else None
        result = train_detector(name, config, sets, output_dir=target, resume=start, log=log,
                                dist_info=dist_info, device=device)
        if result.interrupted:
            trained.append(TrainedDetector(name, target, result, result.checkpoint, None))
            break
        checkpoint = best_checkpoint(target)
        calibration = None
        if dist_info.is_main:
            calibration = calibrate(checkpoint, sets, detection=config.detection,
                                    device=device, batch_size=config.detection.batch_size,
                                    seed=config.training.seed, log=log)
        trained.append(TrainedDetector(name, target, result, checkpoint, calibration))
    return trained


def training_files(sets: TrainingSets) -> list[list]:
    """Name, size and mtime of each training day file: what a reused model was fed."""
    return [[day.meta["source"]["name"], day.meta["source"]["size"],
             day.meta["source"]["mtime_ns"]] for day in sets.train.days]


def reusable(target: Path, config: RadarConfig, name: str, sets: TrainingSets
             ) -> TrainedDetector | None:
    """A finished, calibrated detector in ``target`` trained with today's settings on
    the same training day files (same names, sizes and modification times).

    Its ``calibration`` is None when only the detection settings changed: the model is
    reused and the threshold must be set again.
    """
    from radar.config import build_config
    from radar.metrics_log import read_metrics

    try:
        checkpoint = best_checkpoint(target)
    except RadarError:
        return None
    payload = load_checkpoint(checkpoint, mmap=True)    # metadata only: weights stay on disk
    if payload.get("detector") != name or not payload.get("calibration"):
        return None
    if payload.get("train_files") != training_files(sets):
        return None
    try:
        old = build_config(payload["config"])
    except ConfigError:   # written by a RADAR whose config keys differ: retrain
        return None
    if (old.model_section(name)[0] != config.model_section(name)[0]
            or any(getattr(old, key) != getattr(config, key) for key in ("training", "data"))):
        return None
    # Same model: a change of detection settings (threshold method...) only recalibrates.
    same_detection = old.detection == config.detection
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


DEMO_DAYS, DEMO_SESSIONS, DEMO_SEED = 4, 2000, 20260224


def ensure_demo_data(config: RadarConfig, log: Log) -> Path:
    """Generate the demo day files (and labels.csv) unless they are already there."""
    from radar.data.synth import generate

    data_dir = Path(config.data.preprocessed_dir)
    labels = data_dir / "labels.csv"
    if not (labels.is_file() and list(data_dir.glob(config.data.file_pattern))):
        log(f"generating demo data in {data_dir} ({DEMO_DAYS} days x {DEMO_SESSIONS} sessions)")
        generate(data_dir, days=DEMO_DAYS, sessions=DEMO_SESSIONS, anomaly_rate=0.05,
                 seed=DEMO_SEED)
    return labels


def session_labels(data: DayData, corpus: SessionCorpus) -> np.ndarray | None:
    """Labels (1/0/-1) in corpus session order, or None without a label file."""
    if not any(labels is not None for labels in data.labels):
        return None
    per_day = [labels if labels is not None else np.full(day.n_sessions, -1, np.int8)
               for labels, day in zip(data.labels, data.days)]
    table = corpus.sessions
    out = np.empty(corpus.n_sessions, dtype=np.int8)
    for d, labels in enumerate(per_day):
        rows = table.day == d
        out[rows] = labels[table.row[rows]]
    return out


def detect_and_summarize(loaded: LoadedDetector, data: DayData, *, output: Path, device,
                         batch_size: int, fmt: str = "json", threshold: float | None = None,
                         label_source: str = "") -> dict:
    """Score ``data``, write the results file, return the per-service summary dict.

    ``threshold`` overrides the one calibrated into the checkpoint.
    """
    from radar.report.summary import summarize

    threshold = threshold if threshold is not None else threshold_of(loaded)
    corpus, scores = detect_days(loaded, data, output, threshold=threshold,
                                 batch_size=batch_size, device=device, fmt=fmt)
    return summarize(corpus.services, corpus.sessions.service, scores, threshold,
                     session_labels(data, corpus), label_source)


def threshold_of(loaded: LoadedDetector) -> float:
    if loaded.calibration is None:
        raise RadarError(f"{loaded.checkpoint} holds no calibrated threshold (training did not "
                         "finish calibration); pass --threshold")
    return loaded.calibration.threshold


@dataclass
class TrainedRun:
    trained: list[TrainedDetector]
    val: DayData
    dist_info: DistInfo
    device: torch.device
    sets: TrainingSets


def train_from_config(config: RadarConfig, *, resume: str | None, workers: int, log: Log
                      ) -> TrainedRun:
    """Prepare, split, train and calibrate every configured detector."""
    d = config.detection
    check_method(d.threshold_method, d.threshold_value, bool(config.data.label_file))
    output_dir = start_run(config)
    dist_info, device = init_device(config)
    train, val = split_and_prepare(config, Path(config.data.preprocessed_dir), output_dir,
                                   workers=workers,
                                   labels=load_label_table(config.data.label_file), log=log)
    sets = training_sets(config, train, val)
    trained = train_all(config, sets, resume=resume, log=log, dist_info=dist_info,
                        device=device)
    return TrainedRun(trained, val, dist_info, device, sets)


def ensemble_and_summarize(config: RadarConfig, run: TrainedRun, *, log: Log) -> dict:
    """Score the validation days with every trained detector, combine, write all results.

    Returns the ensemble summary with ``per_detector`` summaries and ``agreement``.
    """
    from radar import ensemble
    from radar.report.summary import summarize

    run_dir = Path(config.output_dir)
    corpus = SessionCorpus(run.val.days, run.sets.vocab, window_length(config))
    members = ensemble.score_members({t.name: t.checkpoint for t in run.trained},
                                     run.sets.calibration, corpus,
                                     batch_size=config.detection.batch_size,
                                     device=run.device, log=log)
    outcome, scorer = ensemble.combine_members(config, members, corpus)
    labels = session_labels(run.val, corpus)
    ids = [np.asarray(day.session_ids) for day in run.val.days]
    keys = [day.session_keys for day in run.val.days]
    label_source = config.data.label_file or ""
    per_detector = {}
    for item, member in zip(run.trained, members):
        records = iter_result_records(corpus, member.results, member.threshold, run.val.names,
                                      ids, keys)
        write_results(item.directory / "anomaly_results.json", records, config.detection.format)
        per_detector[item.name] = summarize(corpus.services, corpus.sessions.service,
                                            member.results.score, member.threshold, labels,
                                            label_source)
    write_results(run_dir / "anomaly_results.json",
                  ensemble.ensemble_records(corpus, outcome, run.val.names, ids, keys),
                  config.detection.format)
    ensemble.write_ensemble_state(run_dir, config, outcome, scorer)
    ensemble.write_calibration(run_dir, outcome.calibration)
    log(f"ensemble ({config.ensemble.method}): {outcome.calibration.describe()}")
    summary = summarize(corpus.services, corpus.sessions.service, outcome.combined,
                        outcome.calibration.threshold, labels, label_source)
    summary["per_detector"] = per_detector
    summary["agreement"] = ensemble.agreement(members)
    summary["severity"] = {level: int((outcome.severity.level == i).sum())
                           for i, level in enumerate(ensemble.LEVELS)}
    return summary
