"""The jobs behind `radar train`, `radar detect` and `radar run`, top to bottom.

run = prepare → choose sets → train → calibrate → combine → score the validation
days → summary (→ report, from the CLI). Each step lives in its own module; this
one only says in which order they happen and where their output goes (through
:class:`~radar.rundir.RunDir`). Calibration uses sessions of the *training* days
held out from training, never the days the run reports on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radar.config import RadarConfig, save_config
from radar.console import data_text
from radar.data.dataset import window_length
from radar.data.files import find_day_files
from radar.data.screen import screen_lines
from radar.data.selection import (
    DayData,
    TrainingSets,
    load_label_table,
    prepare_days,
    split_and_prepare,
    training_sets,
)
from radar.device import resolve_device
from radar.distributed import DistInfo, init_distributed
from radar.fsutil import refuse_overwrite
from radar.results import open_results
from radar.rundir import RunDir, calibration_for, write_json
from radar.scoring.calibration import check_method
from radar.scoring.combine import Combination
from radar.scoring.run import LoadedDetector, RunScorer, load_trained, score_corpus
from radar.scoring.tally import OutcomeTally
from radar.training.fit import TrainedDetector, train_all

Log = Callable[[str], None]


@dataclass
class TrainedRun:
    config: RadarConfig
    run: RunDir
    trained: list[TrainedDetector]
    val: DayData
    sets: TrainingSets
    dist_info: DistInfo
    device: torch.device

    @property
    def interrupted(self) -> bool:
        return any(t.result.interrupted for t in self.trained)


def init_device(config: RadarConfig) -> tuple[DistInfo, torch.device]:
    probe = resolve_device(config.training.device)
    dist_info = init_distributed(probe.type)
    return dist_info, resolve_device(config.training.device, dist_info.local_rank)


def train_from_config(config: RadarConfig, *, resume: str | None, workers: int, log: Log
                      ) -> TrainedRun:
    """Prepare, split, choose the sets, train and calibrate every configured detector."""
    d = config.detection
    check_method(d.threshold_method, d.threshold_value, bool(config.data.label_file))
    run = RunDir.for_config(config.output_dir, config.detectors)
    run.path.mkdir(parents=True, exist_ok=True)
    save_config(config, run.config_path)
    dist_info, device = init_device(config)
    train, val = split_and_prepare(config.data, run.path, workers=workers,
                                   labels=load_label_table(config.data.label_file), log=log)
    sets = training_sets(config.data, window_length(config.data.max_seq_length), train, val)
    for line in screen_lines(sets.screen):
        log(line)
    trained = train_all(config, sets, resume=resume, log=log, dist_info=dist_info,
                        device=device)
    return TrainedRun(config, run, trained, val, sets, dist_info, device)


def fit_ensemble(trained: TrainedRun, loaded: dict[str, LoadedDetector], *, log: Log
                 ) -> Combination:
    """Fit the combination of the ``loaded`` detectors on the held-out sessions; save it."""
    config, sets = trained.config, trained.sets
    calibrated = {t.name: t.holdout_scores for t in trained.trained}
    columns = []
    for name, item in loaded.items():
        scores = calibrated.get(name)      # this run calibrated it: those very scores
        if scores is None:
            scores = score_corpus(item, sets.holdout, batch_size=config.detection.batch_size,
                                  device=trained.device).score
        columns.append(scores)
    thresholds = [item.calibration.threshold for item in loaded.values()]
    combination = Combination.fit(config, np.stack(columns, axis=1), list(loaded), thresholds,
                                  labels=sets.holdout_labels, normal=sets.holdout_normal,
                                  data=sets.calibration_data)
    checkpoints = {item.name: str(item.checkpoint.resolve()) for item in trained.trained}
    write_json(trained.run.ensemble_state, combination.state_dict(checkpoints))
    log(f"ensemble ({config.ensemble.method}): {combination.calibration.describe()}")
    return combination


def scorer_for(trained: TrainedRun, *, log: Log) -> RunScorer:
    """The run's scorer: its one detector, or every detector and their fitted ensemble
    (each checkpoint loaded once, for fitting and scoring alike)."""
    loaded = {t.name: load_trained(t.checkpoint, trained.device) for t in trained.trained}
    combination = fit_ensemble(trained, loaded, log=log) if len(loaded) > 1 else None
    return RunScorer(loaded, combination, trained.run.path)


def score_days(scorer: RunScorer, data: DayData, output: Path, *, fmt: str,
               member_outputs: dict[str, Path] | None = None) -> OutcomeTally:
    """Score every session of ``data`` a chunk of whole day files at a time, writing the
    run's results (and each member's) as each chunk is scored; returns the tally of the
    outcome (memory bounded by the largest chunk, not by ``data``).

    With a source index in the config (``source.index``), each explained event of the
    run's records names the logging statement that printed it."""
    from radar.source.annotate import annotate_from_config

    config = scorer.config
    tally = OutcomeTally(scorer)
    with contextlib.ExitStack() as stack:
        results = stack.enter_context(open_results(output, fmt))
        members = {name: stack.enter_context(open_results(path, fmt))
                   for name, path in (member_outputs or {}).items() if name in scorer.loaded}

        def run_records():
            for days, corpus, outcome in scorer.score_in_chunks(data):
                tally.add(days, corpus, outcome)
                ids, keys = days.session_ids, days.session_keys
                for member in outcome.members:
                    if member.name in members:
                        members[member.name].write(
                            scorer.member_records(corpus, member, days.names, ids, keys))
                yield from scorer.records(corpus, outcome, days.names, ids, keys)

        results.write(annotate_from_config(run_records(), config.source,
                                           data_dir=data.folder,
                                           cache_dir=config.data.cache_dir))
    return tally


def run_validation(trained: TrainedRun, *, log: Log) -> dict:
    """Score the validation days with the trained run; write results, calibration and
    summaries into the run folder; return the run's summary."""
    config, run = trained.config, trained.run
    scorer = scorer_for(trained, log=log)
    members = ({name: run.detector_results(name) for name in run.detectors}
               if run.is_ensemble else None)
    outcome = score_days(scorer, trained.val, run.results,
                         fmt=config.detection.format, member_outputs=members)
    for event in scorer.drift:
        log(data_text(event.describe()))
    write_calibration(run.calibration, outcome)
    if config.detection.injected_sessions:
        # Corrupt the held-out sessions the training filter calls normal: with a label
        # file the known anomalies stay out, so "false alarms" are false alarms.
        write_json(run.quality, estimate_injected_recall(scorer, trained.sets.calibration,
                                                         config, log=log))
    summary = outcome.summary(config.data.label_file or "")
    summary["detector"] = "ensemble" if run.is_ensemble else run.detectors[0]
    for item in trained.trained:
        entry = summary["per_detector"][item.name] if run.is_ensemble else summary
        entry["detector"] = item.name
        entry["train_loss"] = item.result.train_eval_loss
        entry["val_loss"] = item.result.last_val_loss
        if run.is_ensemble:
            write_json(run.detector_summary(item.name), entry)
    write_json(run.summary, summary)
    return summary


def estimate_injected_recall(scorer: RunScorer, held_out, config: RadarConfig, *,
                             log: Log) -> dict:
    """Recall on corruptions injected into held-out sessions (no labels needed)."""
    from radar.quality.inject import injected_recall

    estimate = injected_recall(lambda corpus: scorer.score(corpus).score, held_out,
                               scorer.threshold, seed=config.training.seed,
                               max_sessions=config.detection.injected_sessions)
    kinds = ", ".join(f"{kind} {entry['recall']:.2f}" for kind, entry
                      in estimate["per_kind"].items() if entry["recall"] is not None)
    log(f"injected corruptions in {estimate['sessions_sampled']} held-out sessions: recall "
        f"{kinds}; false alarms on the untouched ones {estimate['false_alarm_rate']:.3f}")
    return estimate


def write_calibration(path: Path, outcome: OutcomeTally) -> None:
    """The calibration record of a results file (:func:`~radar.rundir.calibration_for`
    names it), for reports."""
    data = outcome.calibration.to_dict()
    data["describe"] = outcome.calibration.describe()
    write_json(path, data)


def scoring_inputs(files: list[Path], source: Path | list[Path], *,
                   labels: str | None = None, source_index: str | None = None
                   ) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """What scoring reads, as ``(what, path)``: the inputs (day files, label file, source
    index) and the files of the run it scores with (``source``: its checkpoint or
    ensemble, or several). No output may be one of them."""
    from radar.rundir import run_own_files

    inputs = [("an input day file", path) for path in files]
    inputs += [(what, Path(path)) for what, path in (("the label file", labels),
                                                     ("the source index", source_index))
               if path]
    sources = source if isinstance(source, list) else [source]
    own = [("a file of the run it scores with", path)
           for item in sources for path in run_own_files(item)]
    return inputs, own


def refuse_output_over_inputs(output: Path, inputs: list[tuple[str, Path]],
                              own: list[tuple[str, Path]], *, option: str = "--output"
                              ) -> None:
    """Results never replace an input or a run's own file; their calibration record
    never replaces an input (beside a run's results it is the run's, rewritten with
    them)."""
    refuse_overwrite(output, inputs + own, option=option)
    refuse_overwrite(calibration_for(output), inputs, option=f"{option}'s calibration")


def detect_files(scorer: RunScorer, input_path: str, output: Path, *, pattern: str, fmt: str,
                 cache_dir: str | None, labels: str | None, workers: int, log: Log,
                 source_index: str | None = None) -> dict:
    """`radar detect`: score day files with a trained run; write results and their
    calibration record; summarise. An output that is an input or one of the run's own
    files is refused before anything is read."""
    config = scorer.config
    if cache_dir:
        config.data.cache_dir = cache_dir
    if source_index:
        config.source.index = source_index
    files = find_day_files(input_path, pattern)
    checkpoints = [item.checkpoint for item in scorer.loaded.values()]
    refuse_output_over_inputs(output, *scoring_inputs(
        files, [scorer.source, *checkpoints], labels=labels,
        source_index=config.source.index or None))
    data = prepare_days(files, config.data, workers=workers,
                        log=log, labels=load_label_table(labels))
    outcome = score_days(scorer, data, output, fmt=fmt)
    for event in scorer.drift:
        log(data_text(event.describe()))
    write_calibration(calibration_for(output), outcome)
    return outcome.summary(labels or "")
