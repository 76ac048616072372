"""Scoring sessions with a trained run: its detectors, loaded once, and how they decide together.

One :class:`RunScorer` serves ``radar run``, ``radar detect`` and ``radar serve``
alike. A run with one detector is an ensemble of one: its score is the detector's
own and its threshold the detector's calibrated one; a run with several combines
them through its fitted :class:`~radar.scoring.combine.Combination`. Either way, scoring a
corpus gives an :class:`Outcome`, and :meth:`RunScorer.records` turns it into the
records ``anomaly_results.json`` holds, one per session.

Day files are scored a chunk at a time (:meth:`RunScorer.score_in_chunks`): small days
together, a day of more than ``CHUNK_SESSIONS`` sessions in slices of that many; a
corpus, its per-session arrays and its records never cover more than ``CHUNK_SESSIONS``
sessions, and what the end-of-run summary needs is summed up as the chunks go
(:class:`radar.scoring.tally.OutcomeTally`), so the memory of `radar run` and `radar detect` is bounded by
the chunk, not by the corpus or its largest day. A micro-batch of
`radar serve` or `radar watch` is one corpus scored the same way.

One detector scores a corpus with :func:`score_corpus`: windows in length-sorted batches
(little padding), folded into one score per session (the maximum over its windows; the
explanation comes from that window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radar.checkpoint import load_checkpoint, load_model_state
from radar.config import RadarConfig, build_config
from radar.data.dataset import SessionCorpus, row_slices, window_length
from radar.data.memory import MemoryDay
from radar.data.sampling import BucketBatchSampler
from radar.data.selection import DayData
from radar.data.vocab import EventVocab
from radar.detector import Detector
from radar.device import autocast_context, model_device, release_freed_memory, resolve_precision
from radar.errors import RadarError
from radar.plugins import make_detector
from radar.results import EXPLAIN_KEYS, EXPLAIN_KINDS, SessionResults, iter_result_records
from radar.rundir import RunDir, read_json
from radar.scoring.calibration import Calibration
from radar.scoring.combine import Combination
from radar.scoring.drift import DriftEvent, DriftFilteredDay, find_drift
from radar.scoring.severity import LEVELS, SeverityResult

# A scoring batch holds at most detection.batch_size windows and at most this many
# events per window on average (x the batch size): the longest windows go in smaller
# batches, so the densest batch, which sets the peak memory of scoring, costs what
# batch_size windows of 128 events cost however many long sessions the days hold
# (docs/lab/benchmarks.md, Scale rehearsal). Windows of up to 128 events are not affected.
SCORING_TOKENS_PER_WINDOW = 128


# What a checkpoint says about the training behind it (kept when the model is loaded).
TRAINING_KEYS = ("step", "epoch", "train_files", "services", "train_sessions", "train_windows")


@dataclass
class LoadedDetector:
    detector: Detector
    model: torch.nn.Module
    vocab: EventVocab
    config: RadarConfig
    calibration: Calibration | None
    checkpoint: Path
    training: dict[str, Any] = field(default_factory=dict)   # TRAINING_KEYS of the checkpoint


def load_trained(path: str | Path, device: torch.device) -> LoadedDetector:
    """Rebuild detector, vocabulary and model from a checkpoint file."""
    return loaded_from_payload(load_checkpoint(path, map_location="cpu"), path, device)


def loaded_from_payload(payload: dict[str, Any], path: str | Path, device: torch.device
                        ) -> LoadedDetector:
    """Rebuild detector, vocabulary and model from an already loaded checkpoint dict."""
    missing = [key for key in ("config", "detector", "vocab", "model") if key not in payload]
    if missing:
        raise RadarError(f"{path} lacks {', '.join(missing)}: not a checkpoint of a trained "
                         "RADAR detector (radar train writes best_model.pt)")
    config = build_config(payload["config"])
    detector = make_detector(payload["detector"], config)
    vocab = EventVocab.from_state_dict(payload["vocab"])
    model = detector.build_model(vocab, window_length(config.data.max_seq_length))
    load_model_state(model, payload["model"], path,
                     f"the {payload['detector']} model its config builds")
    model.to(device).eval()
    calibration = payload.get("calibration")
    return LoadedDetector(detector, model, vocab, config,
                          Calibration.from_dict(calibration) if calibration else None, Path(path),
                          {key: payload.get(key) for key in TRAINING_KEYS})


# Sessions in a scoring chunk at most: whole small days gathered up to it, a bigger day
# sliced (~300 bytes of arrays each).
CHUNK_SESSIONS = 65_536


@dataclass
class MemberScores:
    name: str
    threshold: float
    results: SessionResults      # raw scores and explanations of the sessions scored


@dataclass
class Outcome:
    """A corpus scored by a run: the run's score and decision, and each member's say."""

    score: np.ndarray                   # (n,) the detector's score, or the combined one
    calibration: Calibration            # how the threshold in use was set
    members: list[MemberScores]
    normalized: np.ndarray | None = None     # (n, d) several detectors only
    severity: SeverityResult | None = None   # several detectors only

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    @property
    def flagged(self) -> np.ndarray:
        return self.score > self.threshold


def require_calibration(item: LoadedDetector, name: str) -> Calibration:
    """The detector's calibrated threshold, or an error saying how to get one."""
    if item.calibration is None:
        raise RadarError(f"{item.checkpoint} ({name}) holds no calibrated threshold: its "
                         "training did not finish calibration. Run `radar train` (or `radar "
                         "run`) with that config to the end, or give a threshold yourself "
                         "(--threshold T on `radar detect` or `radar serve`)")
    return item.calibration


class RunScorer:
    """The trained detectors of one run and, with several, their fitted combination."""

    def __init__(self, loaded: dict[str, LoadedDetector], combination: Combination | None,
                 source: Path, threshold: float | None = None):
        if threshold is not None and not np.isfinite(threshold):
            raise RadarError(f"--threshold must be a finite number, got {threshold}")
        if not loaded:
            raise RadarError(f"{source}: no detectors to score with")
        self.loaded = loaded
        self.source = source
        first = next(iter(loaded.values()))
        for name, item in loaded.items():
            if item.vocab.state_dict() != first.vocab.state_dict():
                raise RadarError(f"{name} was trained with another vocabulary than the run's "
                                 "other detectors; retrain them in one `radar run`")
        if combination is None and len(loaded) > 1:
            raise RadarError(f"{source}: several detectors but no fitted ensemble")
        if threshold is not None and combination is not None:
            combination = combination.with_threshold(threshold)
        self.combination = combination
        self.override = threshold
        # Drift found on the days the last score_in_chunks read (radar/scoring/drift.py)
        self.drift: list[DriftEvent] = []
        if threshold is None and combination is None:
            require_calibration(first, first.detector.name)

    # -- loading -----------------------------------------------------------------
    @classmethod
    def from_run(cls, run_dir: str | Path, device: torch.device,
                 threshold: float | None = None) -> RunScorer:
        """A run folder: its ensemble when it has several detectors, else its detector."""
        run = RunDir.open(run_dir)
        if run.is_ensemble:
            return cls.from_ensemble(run.ensemble_state, device, threshold)
        name = run.detectors[0]
        return cls({name: load_trained(run.checkpoint(name), device)}, None, run.path, threshold)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device,
                        threshold: float | None = None) -> RunScorer:
        item = load_trained(path, device)
        return cls({item.detector.name: item}, None, Path(path), threshold)

    @classmethod
    def from_ensemble(cls, path: str | Path, device: torch.device,
                      threshold: float | None = None) -> RunScorer:
        """An ``ensemble.json`` (or the run folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = RunDir(path, []).ensemble_state
        if not path.is_file():
            raise RadarError(f"{path} does not exist; `radar run` with several detectors "
                             "writes ensemble.json into its output_dir")
        state = read_json(path) or {}
        checkpoints = state.get("checkpoints")
        if not (isinstance(checkpoints, dict) and checkpoints
                and all(isinstance(value, str) for value in checkpoints.values())):
            raise RadarError(f"{path} is damaged: 'checkpoints' does not name each detector's "
                             "checkpoint; re-run `radar run`")
        loaded = {name: load_trained(checkpoint, device)
                  for name, checkpoint in checkpoints.items()}
        for name, item in loaded.items():
            require_calibration(item, name)
        return cls(loaded, Combination.from_state(state), path, threshold)

    # -- what the run is -----------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.loaded)

    @property
    def is_ensemble(self) -> bool:
        return self.combination is not None

    @property
    def first(self) -> LoadedDetector:
        return next(iter(self.loaded.values()))

    @property
    def config(self) -> RadarConfig:
        return self.first.config

    @property
    def vocab(self):
        return self.first.vocab

    @property
    def window(self) -> int:
        return window_length(self.config.data.max_seq_length)

    @property
    def calibration(self) -> Calibration:
        if self.combination is not None:
            return self.combination.calibration
        if self.override is not None:
            return Calibration("fixed", float(self.override), None, 0, "--threshold",
                               self.first.detector.score_name)
        return require_calibration(self.first, self.first.detector.name)

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    @property
    def name(self) -> str:
        """What the results say scored them."""
        return self.calibration.score_name if self.is_ensemble else self.first.detector.name

    def corpus(self, days, masks: list[np.ndarray] | None = None) -> SessionCorpus:
        return SessionCorpus(days, self.vocab, self.window, masks)

    def member_threshold(self, name: str) -> float:
        """A member's own calibrated threshold (the run's when it has none)."""
        item = self.loaded[name]
        return item.calibration.threshold if item.calibration else self.threshold

    # -- scoring -------------------------------------------------------------------
    def score(self, corpus: SessionCorpus, *, batch_size: int | None = None,
              device: torch.device | None = None) -> Outcome:
        batch_size = batch_size or self.config.detection.batch_size
        members = []
        for name, item in self.loaded.items():
            device_ = device or model_device(item.model)
            results = score_corpus(item, corpus, batch_size=batch_size, device=device_)
            members.append(MemberScores(name, self.member_threshold(name), results))
        if self.combination is None:
            return Outcome(members[0].results.score, self.calibration, members)
        raw = np.stack([m.results.score for m in members], axis=1)
        table = corpus.sessions
        normalized, combined, severity = self.combination.apply(
            raw, corpus.services, table.service, table.flags)
        return Outcome(combined, self.calibration, members, normalized, severity)

    def score_sessions(self, sessions: Sequence[Any], *, device: torch.device | None = None
                       ) -> list[dict[str, Any]]:
        """Score sessions held in memory; one record per session, in order: the record
        ``radar detect`` writes for it (``file`` null: the session came from none;
        ``session_id`` and ``session_key`` echoed as given, null when not).

        A session is a mapping or an object with ``event_sequence`` (raw event ids) and,
        optionally, ``service_name``, ``has_error``, ``has_warn``, ``session_id`` and
        ``session_key``. Nothing is written to disk::

            scorer = RunScorer.from_run("runs/demo", torch.device("cpu"))
            scorer.score_sessions([{"event_sequence": [3, 7, 7, 2], "service_name": "api"}])
        """
        (records,) = self.score_groups([sessions], device=device)
        return records

    def score_groups(self, groups: Sequence[Sequence[Any]], *,
                     device: torch.device | None = None) -> list[list[dict[str, Any]]]:
        """:meth:`score_sessions` for several lists at once (one pass; a micro-batch of
        several requests): one list of records per group."""
        days = [MemoryDay.from_sessions(sessions) for sessions in groups]
        if not any(day.n_sessions for day in days):
            return [[] for _ in days]
        corpus = self.corpus(days)
        outcome = self.score(corpus, device=device)
        records = self.records(corpus, outcome, [None] * len(days),
                               [day.session_ids for day in days],
                               [day.session_keys for day in days])
        out: list[list[dict[str, Any]]] = [[] for _ in days]
        table = corpus.sessions
        for i, record in enumerate(records):       # corpus order: day by day, row by row
            day, row = int(table.day[i]), int(table.row[i])
            record["session_id"] = days[day].given_ids[row]
            out[day].append(record)
        return out

    def score_in_chunks(self, data: DayData, *, batch_size: int | None = None,
                        device: torch.device | None = None,
                        chunk_sessions: int | None = None
                        ) -> Iterator[tuple[DayData, SessionCorpus, Outcome]]:
        """The sessions of ``data`` scored a chunk at a time, in file and session order,
        as (the chunk's days, its corpus, its outcome). Consecutive days are gathered
        until a chunk would pass ``chunk_sessions`` sessions; a bigger day is scored in
        slices of that many (its chunks' corpora hold a row range of it). What is held
        at once is bounded by that, whatever the corpus and its days' sizes; small days
        share a chunk so the length-sorted batches stay full (one day of a few hundred
        sessions at a time doubled the padding, and the time, in a measured run)."""
        limit = chunk_sessions or CHUNK_SESSIONS
        days = self.without_drift(data)

        def scored(first: int, last: int, masks=None):
            chunk = DayData(data.files[first:last], days[first:last],
                            data.labels[first:last])
            corpus = self.corpus(chunk.days, masks)
            return chunk, corpus, self.score(corpus, batch_size=batch_size, device=device)

        start, held = 0, 0
        for d, day in enumerate(data.days):
            if held and held + day.n_sessions > limit:         # close the gathered days
                yield scored(start, d)
                start, held = d, 0
            if day.n_sessions > limit:                          # a big day, in slices
                for rows in row_slices(np.ones(day.n_sessions, dtype=bool), limit):
                    yield scored(d, d + 1, [rows])
                start = d + 1
                continue
            held += day.n_sessions
        if start < len(data.days):
            yield scored(start, len(data.days))

    def without_drift(self, data: DayData) -> list:
        """The days of ``data``, each read without the events that are drift on it
        (``detection.drift_share``, radar/scoring/drift.py); what was found is kept in
        ``self.drift`` for the summary and logged."""
        self.drift = []
        share = self.config.detection.drift_share
        days = []
        for path, day in zip(data.files, data.days):
            found = find_drift(day, self.vocab, path.name, share)
            self.drift += found
            days.append(DriftFilteredDay(day, [e.event_id for e in found]) if found else day)
        return days

    def records(self, corpus: SessionCorpus, outcome: Outcome, file_names: list,
                session_ids: list[np.ndarray], session_keys: list) -> Iterator[dict[str, Any]]:
        """One record per session: the run's score and decision; with several detectors
        also each one's raw and normalised score and decision, severity and reasons."""
        members = outcome.members
        if outcome.normalized is None:
            yield from iter_result_records(corpus, members[0].results, outcome.threshold,
                                           file_names, session_ids, session_keys)
            return
        # The explanation comes from the detector that found the session most unusual.
        lead = np.argmax(np.nan_to_num(outcome.normalized, nan=-np.inf), axis=1)
        n = corpus.n_sessions
        explain = np.stack([m.results.explain for m in members], axis=0)
        merged = SessionResults(outcome.score, {}, explain[lead, np.arange(n)])
        base = iter_result_records(corpus, merged, outcome.threshold, file_names,
                                   session_ids, session_keys)
        for i, record in enumerate(base):
            record["detectors"] = {
                m.name: {"score": float(m.results.score[i]),
                         "normalized": float(outcome.normalized[i, j]),
                         "flagged": bool(m.results.score[i] > m.threshold)}
                for j, m in enumerate(members)}
            record["explained_by"] = members[int(lead[i])].name
            record["severity"] = LEVELS[int(outcome.severity.level[i])]
            record["severity_reasons"] = outcome.severity.reasons[i]
            yield record

    def member_records(self, corpus: SessionCorpus, member: MemberScores, file_names: list,
                       session_ids: list[np.ndarray], session_keys: list
                       ) -> Iterator[dict[str, Any]]:
        """One member's own records (its score and its own threshold)."""
        return iter_result_records(corpus, member.results, member.threshold, file_names,
                                   session_ids, session_keys)


def score_corpus(loaded: LoadedDetector, corpus: SessionCorpus, *, batch_size: int,
                 device: torch.device, progress: Callable[[int], None] | None = None
                 ) -> SessionResults:
    """Score every window of ``corpus`` and fold windows into sessions (max).

    Batches are length-sorted and capped in tokens (SCORING_TOKENS_PER_WINDOW).
    Precision is the device's automatic choice (bf16/fp16 on CUDA, fp32 on CPU) for
    every caller, so a threshold calibrated here matches the scores detection makes.
    """
    precision = resolve_precision("auto", device)
    n = corpus.n_sessions
    score = np.full(n, -np.inf)
    extras: dict[str, np.ndarray] = {}
    k = loaded.detector.explain_top_k
    explain = np.full((n, k, len(EXPLAIN_KEYS)), np.nan)
    sampler = BucketBatchSampler(corpus.window_length, batch_size, shuffle=False,
                                 max_tokens=batch_size * SCORING_TOKENS_PER_WINDOW)
    for items in sampler:
        batch = corpus[items].to(device)
        with torch.no_grad(), autocast_context(precision, device):
            out = loaded.detector.score_sessions(loaded.model, batch)
        window_scores = out.score.float().cpu().numpy().astype(np.float64)
        sessions = corpus.window_session[items]
        better = window_scores > score[sessions]
        # Windows of one session can share a batch; take each session's best window.
        order = np.lexsort((-window_scores, sessions))
        first = np.ones(order.size, dtype=bool)
        first[1:] = sessions[order][1:] != sessions[order][:-1]
        best = order[first]
        best = best[better[best]]
        score[sessions[best]] = window_scores[best]
        for name, values in out.extras.items():
            column = extras.setdefault(name, np.full(n, np.nan))
            column[sessions[best]] = values.float().cpu().numpy()[best]
        if out.explanations is not None and k:
            rows = _explanations_array(out.explanations, best, k)
            rows[:, :, 0] += corpus.window_start[items[best]][:, None]   # window → session
            rows[:, :, 0] = corpus.original_positions(sessions[best], rows[:, :, 0])
            explain[sessions[best]] = rows
        if progress:
            progress(len(items))
        release_freed_memory()
    return SessionResults(score, extras, explain)


def _explanations_array(explanations: list[list[dict[str, Any]]], rows: np.ndarray, k: int
                        ) -> np.ndarray:
    out = np.full((rows.size, k, len(EXPLAIN_KEYS)), np.nan)
    for i, row in enumerate(rows):
        for j, item in enumerate(explanations[row][:k]):
            kind = item.get("kind", "event")
            values = [item.get(key) for key in EXPLAIN_KEYS[:-1]]
            values.append(EXPLAIN_KINDS.index(kind) if kind in EXPLAIN_KINDS else None)
            out[i, j] = [np.nan if value is None else float(value) for value in values]
    return out
