"""`radar review RUN_DIR`: the sessions an operator should look at, as a label file to fill.

The run's ``anomaly_results.json`` is streamed once: a bounded heap keeps the
highest-scoring flagged sessions and, optionally, a reservoir keeps a uniform random
sample of unflagged ones (so reviewers also confirm normals, which a threshold needs).
The CSV starts with ``file,session_id,label`` — RADAR's label-file header — with the
label left empty, followed by context columns for the reviewer (score, severity, the
explanation and a few raw log lines around the most surprising event). Filled in, the
file is read by :func:`radar.data.labels.read_labels` as it is: the extra columns are
ignored, and rows still without a label count as not yet reviewed.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radar.console import printable
from radar.data.labels import LABEL_HEADER
from radar.data.logs import excerpt, original_logs
from radar.errors import RadarError
from radar.fsutil import atomic_write, refuse_overwrite
from radar.report.analyze import explain_positions
from radar.results import iter_results
from radar.rundir import REVIEW, RunDir, run_own_files

CONTEXT_COLUMNS = ("session_key", "service_name", "anomaly_score", "severity", "is_anomaly",
                   "has_error", "explanation", "log_lines")
# The fields of a result record the review keeps (not the detector's other scores).
KEPT_FIELDS = ("file", "session_id", "session_key", "service_name", "anomaly_score",
               "severity", "is_anomaly", "has_error", "top_positions")
DEFAULT_TOP = 50
LOG_LINES = 5
LINE_CHARS = 500               # a raw line is cut here (a spreadsheet cell holds 32,767)
# A cell starting with one of these is a formula to a spreadsheet; log text is anyone's
# input, so such text cells get a leading apostrophe (shown as text, never run).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ReviewPick:
    """The sessions chosen for review, each a trimmed result record."""

    flagged: list[dict[str, Any]] = field(default_factory=list)   # highest scores first
    normal: list[dict[str, Any]] = field(default_factory=list)    # random unflagged sample
    n_sessions: int = 0
    n_flagged: int = 0


def _heap_key(record: dict) -> float:
    score = float(record["anomaly_score"])
    return score if np.isfinite(score) else np.finfo(float).max


def pick_sessions(results_path: str | Path, *, top: int = DEFAULT_TOP, sample_normal: int = 0,
                  seed: int = 0) -> ReviewPick:
    """Stream a results file: the ``top`` highest-scoring flagged sessions and a uniform
    sample of ``sample_normal`` unflagged ones (reservoir sampling, seeded)."""
    rng = random.Random(seed)
    heap: list[tuple[float, int, dict]] = []
    order = itertools.count()
    pick = ReviewPick()
    seen_normal = 0
    for record in iter_results(results_path):
        pick.n_sessions += 1
        kept = {key: record.get(key) for key in KEPT_FIELDS}
        if record["is_anomaly"]:
            pick.n_flagged += 1
            item = (_heap_key(record), next(order), kept)
            if len(heap) < top:
                heapq.heappush(heap, item)
            elif top and item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
            continue
        seen_normal += 1
        if len(pick.normal) < sample_normal:
            pick.normal.append(kept)
        elif sample_normal:
            slot = rng.randrange(seen_normal)
            if slot < sample_normal:
                pick.normal[slot] = kept
    pick.flagged = [kept for _, _, kept in sorted(heap, key=lambda item: (-item[0], item[1]))]
    pick.normal.sort(key=lambda kept: -_heap_key(kept))
    return pick


def _text_cell(value: Any) -> str:
    """Text from data for a spreadsheet cell: control characters shown as escapes (a NUL
    or a bare CR would break the file as a label file), and a leading ' where a
    spreadsheet would read a formula."""
    text = printable(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _log_cell(lines: list[str] | None, positions: list[dict], n: int) -> str:
    """A few raw lines around the most surprising event; '>' marks that event's line."""
    if lines is None:
        return ""
    focus = positions[0]["position"] if positions else None
    return "\n".join(f"{'>' if item['focus'] else ' '} {item['line']}: "
                     f"{printable(item['text'][:LINE_CHARS])}" for item in excerpt(lines, focus, n))


def review_rows(records: Iterable[dict], *, data_dir: str | Path | None,
                cache_dir: str | Path | None, log_lines: int = LOG_LINES
                ) -> list[list[Any]]:
    """One CSV row per record: the label columns (label empty), then the context."""
    records = list(records)
    wanted: dict[str, set[int]] = {}
    for record in records:
        wanted.setdefault(record["file"], set()).add(int(record["session_id"]))
    logs = original_logs(data_dir, wanted, cache_dir=cache_dir) if log_lines else {}
    rows = []
    for record in records:
        positions = record.get("top_positions") or []
        lines = logs.get((record["file"], int(record["session_id"])))
        rows.append([record["file"], record["session_id"], "",
                     _text_cell(record.get("session_key") or ""),
                     _text_cell(record["service_name"]),
                     repr(float(record["anomaly_score"])), _text_cell(record.get("severity") or ""),
                     int(bool(record["is_anomaly"])), int(bool(record.get("has_error"))),
                     explain_positions(positions) if positions else "",
                     _log_cell(lines, positions, log_lines)])
    return rows


def write_review(path: str | Path, rows: Iterable[list[Any]]) -> None:
    """The review CSV, atomically: the label-file header, then the context columns."""
    with atomic_write(path, "w") as handle:
        # CRLF row ends (RFC 4180, what spreadsheets write): csv quotes a cell holding
        # any character of the row end, so a bare CR in a value ("\r=1+1") stays inside
        # its quoted cell instead of starting a row whose first cell a spreadsheet runs.
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(LABEL_HEADER + CONTEXT_COLUMNS)
        writer.writerows(rows)


@dataclass
class RunInputs:
    """What a review needs from a run folder."""

    results: Path
    data_dir: str | None
    cache_dir: str | None


def run_inputs(run_dir: str | Path) -> RunInputs:
    """The run's results file and where its day files and cache are (the one adapter to
    the run-folder layout)."""
    run = RunDir.open(run_dir)
    if not run.results.is_file():
        raise RadarError(f"{run.results} does not exist: the run has not scored its "
                         "validation days yet; finish `radar run` first")
    data = (run.config() or {}).get("data") or {}
    return RunInputs(run.results, data.get("preprocessed_dir"), data.get("cache_dir"))


def review_inputs(run_dir: str | Path, inputs: RunInputs, review: Path
                  ) -> list[tuple[str, Path]]:
    """What a review CSV must never replace, even with --force: the results it reads, the
    run's own files (but a review CSV) and its day files and labels."""
    from radar.data.files import dataset_files

    own = [("a file of the run", path) for path in run_own_files(run_dir)
           if path.name != REVIEW]
    data = dataset_files(Path(inputs.data_dir)) if inputs.data_dir else []
    return ([("the results it reviews", inputs.results)] + own
            + [("a file of the run's data", path) for path in data])


@dataclass
class ReviewWritten:
    path: Path
    flagged: int             # rows of flagged sessions written
    normal: int              # rows of unflagged sessions written
    n_flagged: int           # flagged sessions in the results
    n_sessions: int


def review_run(run_dir: str | Path, *, output: str | Path | None = None,
               top: int = DEFAULT_TOP, sample_normal: int = 0, seed: int = 0,
               log_lines: int = LOG_LINES, overwrite: bool = False) -> ReviewWritten:
    """Write the review CSV of a finished run (default ``RUN_DIR/review.csv``).

    An existing file is never replaced unless ``overwrite``: it may hold an operator's
    labels.
    """
    inputs = run_inputs(run_dir)
    path = Path(output) if output else RunDir(Path(run_dir), []).review
    refuse_overwrite(path, review_inputs(run_dir, inputs, path))
    if path.exists() and not overwrite:
        raise RadarError(f"{path} exists and may hold labels already given; pass --output "
                         "NEW.csv, or --force to replace it")
    pick = pick_sessions(inputs.results, top=top, sample_normal=sample_normal, seed=seed)
    rows = review_rows(pick.flagged + pick.normal, data_dir=inputs.data_dir,
                       cache_dir=inputs.cache_dir, log_lines=log_lines)
    write_review(path, rows)
    return ReviewWritten(path, len(pick.flagged), len(pick.normal), pick.n_flagged,
                         pick.n_sessions)
