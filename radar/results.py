"""The results file, ``anomaly_results.json``: its record format, writing it, reading it back.

One record per session (file, session_id, service, score, decision, threshold, flags,
length, the detector's extras and its most surprising positions). RADAR writes one
record per line, as a JSON array or JSON Lines, streamed and atomic, so no more than the
day in hand is ever held. Reading streams too: each record is decoded, its few numeric
fields go into growing arrays and only the ``keep_top`` highest-scoring records are kept
whole (a heap); a JSON array in any other layout (pretty-printed by another tool) falls
back to ijson. :class:`LabelJoin` joins a label table onto records a chunk at a time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import json
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec
import numpy as np

from radar.data.cache import ERROR_BIT, WARN_BIT
from radar.errors import DataError
from radar.fsutil import atomic_write
from radar.rundir import RESULTS

if TYPE_CHECKING:
    from radar.data.dataset import SessionCorpus

# Explanations are kept as a float array (n_sessions, k, 5) rather than dicts so a
# day of millions of sessions stays small; NaN stands for "none" (e.g. no raw id
# survives for an unseen event).
EXPLAIN_KEYS = ("position", "event_id", "rank", "probability", "kind")
EXPLAIN_KINDS = ("event", "unseen", "end")

@dataclass
class SessionResults:
    """Per-session outputs of scoring a corpus (rows match ``corpus.sessions``)."""

    score: np.ndarray                       # (n,) float64
    extras: dict[str, np.ndarray]           # name -> (n,)
    explain: np.ndarray                     # (n, k, 5) float64, NaN where absent


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


# The severity levels a record may carry, lowest first (set by radar.scoring.severity).
LEVELS = ("NORMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
REQUIRED = ("file", "session_id", "service_name", "anomaly_score", "is_anomaly")


@dataclass
class Results:
    """Per-session columns of a results file, in file order."""

    path: Path
    files: list[str]                       # distinct day file names
    file: np.ndarray                       # (n,) index into files
    session_id: np.ndarray                 # (n,) int64
    session_key: list[str | None]
    services: list[str]
    service: np.ndarray                    # (n,) index into services
    score: np.ndarray                      # (n,) float64
    is_anomaly: np.ndarray                 # (n,) bool
    has_error: np.ndarray                  # (n,) bool
    has_warn: np.ndarray                   # (n,) bool
    severity: np.ndarray | None            # (n,) int8 index into LEVELS, when present
    thresholds: set[float]                 # distinct "threshold" values seen
    top: list[dict[str, Any]] = field(default_factory=list)   # highest scores first

    @property
    def n(self) -> int:
        return int(self.score.size)

    @property
    def threshold(self) -> float | None:
        """The threshold the file was written with, when every record names the same one."""
        return next(iter(self.thresholds)) if len(self.thresholds) == 1 else None


def _iter_records(path: Path) -> Iterator[tuple[int, dict]]:
    """(index, record) pairs; one record per line when possible, else ijson."""
    decoder = msgspec.json.Decoder()
    with path.open("rb") as handle:
        index = 0
        for line in handle:
            text = line.strip()
            if not text or text in (b"[", b"]"):
                continue
            if text.endswith(b","):
                text = text[:-1]
            if text.startswith(b"["):
                text = text[1:]
            if text.endswith(b"]") and not text.endswith(b"]]"):
                text = text[:-1]
            try:
                record = decoder.decode(text)
            except (RecursionError, UnicodeDecodeError) as exc:
                what = ("nests values too deeply to decode" if isinstance(exc, RecursionError)
                        else "is not valid UTF-8")
                raise DataError(f"a result record {what}; pass the anomaly_results.json "
                                "written by `radar detect` or `radar run`",
                                file=str(path), index=index) from None
            except msgspec.DecodeError:
                break
            if not isinstance(record, dict):
                break
            yield index, record
            index += 1
        else:
            return
    if index:   # the layout changed mid-file: that is damage, not a format
        raise DataError("record is not one JSON object on its own line; was the file cut "
                        "short or edited? Re-run `radar detect` to rewrite it",
                        file=str(path), index=index)
    yield from _iter_records_ijson(path)


def _iter_records_ijson(path: Path) -> Iterator[tuple[int, dict]]:
    import ijson

    with path.open("rb") as handle:
        try:
            yield from enumerate(ijson.items(handle, "item", use_float=True))
        except (ijson.JSONError, ValueError) as exc:     # ValueError: bytes not UTF-8
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"not a JSON array of result records ({reason}); pass the "
                            "anomaly_results.json written by `radar detect` or `radar run`",
                            file=str(path)) from None


def _check(record: Any, path: Path, index: int) -> None:
    if not isinstance(record, dict):
        raise DataError("result record is not a JSON object", file=str(path), index=index)
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise DataError(f"result record lacks {', '.join(missing)}; pass a file written by "
                        "`radar detect` or `radar run`", file=str(path), index=index)
    score = record["anomaly_score"]
    # null: a session the detector could not score (what radar writes for NaN)
    if score is not None and (not isinstance(score, (int, float)) or isinstance(score, bool)):
        raise DataError(f"anomaly_score {score!r} is not a number", file=str(path), index=index)
    session_id = record["session_id"]
    if (not isinstance(session_id, int) or isinstance(session_id, bool)
            or not -2**63 <= session_id < 2**63):
        raise DataError(f"session_id {session_id!r} is not a 64-bit integer", file=str(path),
                        index=index)
    key = record.get("session_key")
    if key is not None and not isinstance(key, str):
        raise DataError(f"session_key {key!r} is not a string", file=str(path), index=index)
    threshold = record.get("threshold")
    if threshold is not None and (not isinstance(threshold, (int, float))
                                  or isinstance(threshold, bool)):
        raise DataError(f"threshold {threshold!r} is not a number", file=str(path), index=index)


def iter_results(path: str | Path) -> Iterator[dict]:
    """Every record of a results file, checked, streamed in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError("results file does not exist; `radar detect` or `radar run` writes "
                        f"{RESULTS}", file=str(path))
    for index, record in _iter_records(path):
        _check(record, path, index)
        yield record


def load_results(path: str | Path, *, keep_top: int = 0) -> Results:
    """Stream a results file into columns; keep the ``keep_top`` best records whole."""
    path = Path(path)
    files: dict[str, int] = {}
    services: dict[str, int] = {}
    columns: dict[str, list] = {key: [] for key in ("file", "session_id", "service", "score",
                                                    "is_anomaly", "has_error", "has_warn",
                                                    "severity")}
    keys: list[str | None] = []
    thresholds: set[float] = set()
    heap: list[tuple[float, int, dict]] = []
    counter = itertools.count()
    for record in iter_results(path):
        columns["file"].append(files.setdefault(str(record["file"]), len(files)))
        columns["service"].append(services.setdefault(str(record["service_name"]),
                                                      len(services)))
        columns["session_id"].append(int(record["session_id"]))
        score = float("nan") if record["anomaly_score"] is None else float(record["anomaly_score"])
        columns["score"].append(score)
        columns["is_anomaly"].append(bool(record["is_anomaly"]))
        columns["has_error"].append(bool(record.get("has_error", False)))
        columns["has_warn"].append(bool(record.get("has_warn", False)))
        level = record.get("severity")
        columns["severity"].append(LEVELS.index(level) if level in LEVELS else -1)
        keys.append(record.get("session_key"))
        if "threshold" in record and record["threshold"] is not None:
            thresholds.add(float(record["threshold"]))
        if keep_top:
            rank = score if np.isfinite(score) else (np.finfo(float).max if score > 0
                                                     else -np.finfo(float).max)  # NaN: last
            item = (rank, next(counter), record)
            if len(heap) < keep_top:
                heapq.heappush(heap, item)
            elif item[0] > heap[0][0]:
                heapq.heapreplace(heap, item)
    if not columns["score"]:
        raise DataError("results file holds no records", file=str(path))
    severity = np.asarray(columns["severity"], dtype=np.int8)
    return Results(
        path=path, files=list(files), file=np.asarray(columns["file"], dtype=np.int32),
        session_id=np.asarray(columns["session_id"], dtype=np.int64), session_key=keys,
        services=list(services), service=np.asarray(columns["service"], dtype=np.int32),
        score=np.asarray(columns["score"], dtype=np.float64),
        is_anomaly=np.asarray(columns["is_anomaly"], dtype=bool),
        has_error=np.asarray(columns["has_error"], dtype=bool),
        has_warn=np.asarray(columns["has_warn"], dtype=bool),
        severity=severity if (severity >= 0).any() else None, thresholds=thresholds,
        top=[record for _, _, record in sorted(heap, key=lambda item: (-item[0], item[1]))])


class LabelJoin:
    """Labels (1/0, -1 unknown) of results records from a :class:`LabelTable`, a chunk of
    records at a time, with the check :meth:`LabelTable.lookup` makes within one call
    carried across chunks: a labelled (file, session_id) met twice is an error."""

    def __init__(self, table):
        self.table = table
        self.seen: set[tuple[str, int]] = set()     # labelled sessions met: at most the table

    def labels(self, files: list[str], file: np.ndarray, session_id: np.ndarray,
               session_key: list[str | None]) -> np.ndarray:
        out = np.full(file.size, -1, dtype=np.int8)
        for index in np.unique(file):
            rows = np.flatnonzero(file == index)
            keys = [session_key[i] for i in rows]
            name = files[int(index)]
            out[rows] = self.table.lookup(name, session_id[rows],
                                          keys if any(key is not None for key in keys) else None)
            self._check_repeats(Path(name).name, session_id[rows])
        return out

    def _check_repeats(self, stem: str, session_ids: np.ndarray) -> None:
        labelled = self.table.by_file_session
        if not labelled:
            return
        for sid in session_ids.tolist():
            if (stem, sid) not in labelled:
                continue
            if (stem, sid) in self.seen:
                raise DataError(f"session_id {sid} occurs more than once in {stem}, so the "
                                f"labels in {self.table.source} keyed by (file, session_id) "
                                "cannot tell those sessions apart; give every session of a "
                                "day its own session_id (`radar validate` lists repeats)")
            self.seen.add((stem, sid))
