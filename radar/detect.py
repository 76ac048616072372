"""Scoring sessions with a trained detector and writing ``anomaly_results.json``.

Windows are scored in length-sorted batches (little padding), then folded into
one score per session (the maximum over its windows; the explanation comes from
that window). Callers hand :func:`score_corpus` a bounded chunk of sessions at a time
(small day files together, a big one in slices: :meth:`radar.runner.RunScorer.
score_in_chunks`), so its per-session arrays never cover the corpus or a whole big day;
results stream to disk one record at a time, atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from radar.checkpoint import load_checkpoint, load_model_state
from radar.config import RadarConfig, build_config
from radar.data.cache import ERROR_BIT, WARN_BIT
from radar.data.dataset import SessionCorpus
from radar.data.sampling import BucketBatchSampler
from radar.data.selection import window_length
from radar.data.vocab import EventVocab
from radar.detector import Detector
from radar.device import autocast_context, resolve_precision
from radar.errors import ConfigError, RadarError
from radar.fsutil import atomic_write
from radar.scoring.calibration import Calibration

# Explanations are kept as a float array (n_sessions, k, 5) rather than dicts so a
# day of millions of sessions stays small; NaN stands for "none" (e.g. no raw id
# survives for an unseen event).
EXPLAIN_KEYS = ("position", "event_id", "rank", "probability", "kind")
EXPLAIN_KINDS = ("event", "unseen", "end")
# A scoring batch holds at most detection.batch_size windows and at most this many
# events per window on average (x the batch size): the longest windows go in smaller
# batches, so the densest batch, which sets the peak memory of scoring, costs what
# batch_size windows of 128 events cost however many long sessions the days hold
# (docs/benchmarks.md, Scale rehearsal). Windows of up to 128 events are not affected.
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


def make_detector(name: str, config: RadarConfig) -> Detector:
    """Instantiate detector ``name`` with the config's model section and run options."""
    from radar.config import build_section
    from radar.plugins import get_detector_class

    cls = get_detector_class(name)
    section, key = config.model_section(name)
    try:
        detector = cls(build_section(cls.config_class, section, key))
    except ConfigError as exc:
        if key != "model" or not config.model:
            raise
        raise ConfigError(f"{exc} (the config's `model:` section belongs to the first "
                          f"detector, {name} here; put another detector's keys under "
                          "models.NAME, e.g. models.logbert)") from None
    return detector


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


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on another C library."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_freed_memory() -> None:
    """Hand heap pages freed since the last call back to the system (glibc; a no-op
    elsewhere). Scoring allocates and frees batch tensors of ever-changing sizes, which
    glibc keeps by default, so without this the RSS climbs with the batches scored, not
    with what is alive (measured in docs/benchmarks.md, "Scale rehearsal")."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class SessionResults:
    """Per-session outputs of scoring a corpus (rows match ``corpus.sessions``)."""

    score: np.ndarray                       # (n,) float64
    extras: dict[str, np.ndarray]           # name -> (n,)
    explain: np.ndarray                     # (n, k, 5) float64, NaN where absent


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


def _explanation_dicts(rows: np.ndarray) -> list[dict[str, Any]]:
    items = []
    for position, event_id, rank, probability, kind in rows:
        if np.isnan(position):
            continue
        items.append({"position": int(position),
                      "event_id": None if np.isnan(event_id) else int(event_id),
                      "kind": "event" if np.isnan(kind) else EXPLAIN_KINDS[int(kind)],
                      "rank": None if np.isnan(rank) else int(rank),
                      "probability": None if np.isnan(probability) else float(probability)})
    return items


def iter_result_records(corpus: SessionCorpus, results: SessionResults, threshold: float,
                        file_names: list[str], session_ids: list[np.ndarray],
                        session_keys: list[list[str] | None]) -> Iterator[dict[str, Any]]:
    """One JSON-ready record per session, in corpus order."""
    table = corpus.sessions
    threshold = float(threshold)
    for i in range(corpus.n_sessions):
        day, row = int(table.day[i]), int(table.row[i])
        record: dict[str, Any] = {
            "file": file_names[day],
            "session_id": int(session_ids[day][row]),
        }
        keys = session_keys[day]
        if keys is not None:
            record["session_key"] = keys[row]
        flags = int(table.flags[i])
        record.update({
            "service_name": corpus.services[int(table.service[i])],
            "anomaly_score": float(results.score[i]),
            "is_anomaly": bool(results.score[i] > threshold),
            "threshold": threshold,
            "has_error": bool(flags & ERROR_BIT),
            "has_warn": bool(flags & WARN_BIT),
            "length": int(table.length[i]),
        })
        for name, values in results.extras.items():
            record[name] = None if np.isnan(values[i]) else float(values[i])
        record["top_positions"] = _explanation_dicts(results.explain[i])
        yield record


def _finite_json(value: Any) -> Any:
    """``value`` with non-finite floats made JSON (which has no NaN or Infinity, and what
    RADAR writes it must read back): infinities become the largest finite float of their
    sign, so a score keeps its order and its decision; NaN becomes null."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)
    if isinstance(value, dict):
        return {key: _finite_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_json(item) for item in value]
    return value


def record_json(record: dict[str, Any]) -> str:
    """One result record as standard JSON (see :func:`_finite_json`)."""
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite_json(record), ensure_ascii=False, allow_nan=False)


class ResultsWriter:
    """An open results file taking records as they come (see :func:`open_results`)."""

    def __init__(self, handle: IO[str], fmt: str):
        self.handle, self.fmt, self.count = handle, fmt, 0

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        """Append ``records``; returns the number written so far."""
        for record in records:
            if self.fmt == "json":
                self.handle.write(",\n" if self.count else "\n")
            self.handle.write(record_json(record))
            if self.fmt == "jsonl":
                self.handle.write("\n")
            self.count += 1
        return self.count


@contextlib.contextmanager
def open_results(path: str | Path, fmt: str = "json") -> Iterator[ResultsWriter]:
    """A results file (JSON array, or JSON Lines) written record by record while days are
    scored, so no more than the day in hand is ever held; it takes ``path``'s place
    atomically when the block ends without an error."""
    with atomic_write(path, "w") as handle:
        if fmt == "json":
            handle.write("[")
        yield ResultsWriter(handle, fmt)
        if fmt == "json":
            handle.write("\n]\n")


def write_results(path: str | Path, records: Iterable[dict[str, Any]], fmt: str = "json"
                  ) -> int:
    """Stream records to ``path`` as a JSON array (or JSON Lines), atomically."""
    with open_results(path, fmt) as writer:
        return writer.write(records)
