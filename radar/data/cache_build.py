"""Building the prepared cache: day files streamed into the arrays :mod:`radar.data.cache` reads.

``prepare_file`` converts one day file into its cache directory, atomically (a temporary
directory renamed into place, so an interrupted prepare leaves no half-written cache);
``prepare_files`` does many, skipping those already prepared from the same content, in
parallel processes when asked. Arrays are streamed to disk while the file is read, so
memory stays flat whatever the file size. The layout itself is described in
:mod:`radar.data.cache`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import shutil
import time
import uuid
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np

from radar.data.cache import (
    ERROR_BIT,
    FORMAT_VERSION,
    META_NAME,
    WARN_BIT,
    cache_dir_for,
    is_prepared_and_fresh,
    read_meta,
    source_signature,
)
from radar.data.reader import TOKEN_FIELDS, iter_session_batches
from radar.data.records import (
    LAYOUT_CUSTOM,
    ReadReport,
    TokenLayoutChecker,
    active_tokens,
    rebuild_data_error,
)
from radar.errors import DataError
from radar.fsutil import atomic_write_text, fsync_dir

_NPY_HEADER_SIZE = 128


# ---------------------------------------------------------------- streaming .npy writer

class _NpyAppender:
    """Streams arrays into a 1-D ``.npy`` file; the header is filled in on close.

    A fixed 128-byte header is reserved up front (numpy accepts any header padded with
    spaces), so the array's length need not be known until the end.
    """

    def __init__(self, path: Path, dtype):
        self.path, self.dtype = path, np.dtype(dtype)
        self.handle = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - kept across calls
        self.handle.write(b"\0" * _NPY_HEADER_SIZE)
        self.count = 0
        self.max_value: int | None = None

    def write(self, values) -> None:
        values = np.asarray(values, dtype=self.dtype)
        if values.size:
            top = int(values.max())
            self.max_value = top if self.max_value is None else max(self.max_value, top)
            values.tofile(self.handle)
            self.count += values.size

    def close(self) -> int:
        header = (f"{{'descr': '{self.dtype.str}', 'fortran_order': False, "
                  f"'shape': ({self.count},), }}")
        header = header.ljust(_NPY_HEADER_SIZE - 11) + "\n"
        self.handle.seek(0)
        self.handle.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                          + header.encode("latin1"))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return self.count

    def abandon(self) -> None:
        self.handle.close()


class _SessionKeyWriter:
    """Writes session_keys.json as a JSON array, streaming; only if some record has a key."""

    def __init__(self, path: Path):
        self.path, self.handle, self.count = path, None, 0

    def add(self, keys: list) -> None:
        if self.handle is None:
            if all(key is None for key in keys):
                self.count += len(keys)
                return
            self.handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - as above
            self.handle.write("[" + "null," * self.count)
        text = ",".join(json.dumps(key, ensure_ascii=False) for key in keys)
        self.handle.write(text + ",")
        self.count += len(keys)

    def close(self) -> bool:
        """Finish the file; True when it was written."""
        if self.handle is None:
            return False
        self.handle.seek(self.handle.tell() - 1)      # drop the trailing comma
        self.handle.write("]")
        self.handle.close()
        return True


# ---------------------------------------------------------------- writing one day

_ARRAYS = {"events": np.int32, "offsets": np.int64, "session_ids": np.int64,
           "flags": np.uint8, "service": np.uint16, "record_offsets": np.int64}


class _DayWriter:
    """Accumulates batches of good records into the arrays of one day directory.

    Each batch becomes numpy arrays at once (np.fromiter over the batch), never a
    Python list per session kept around, so memory does not grow with the file.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.arrays = {name: _NpyAppender(directory / f"{name}.npy", dtype)
                       for name, dtype in _ARRAYS.items()}
        self.keys = _SessionKeyWriter(directory / "session_keys.json")
        self.arrays["offsets"].write([0])
        self.n_events = 0
        self.services: dict[str, int] = {}

    def add(self, batch: list[dict]) -> None:
        arrays, n = self.arrays, len(batch)
        sequences = [record["event_sequence"] for record in batch]
        lengths = np.fromiter(map(len, sequences), np.int64, n)
        total = int(lengths.sum())
        arrays["events"].write(np.fromiter(chain.from_iterable(sequences), np.int32, total))
        arrays["offsets"].write(self.n_events + np.cumsum(lengths))
        self.n_events += total
        arrays["session_ids"].write(np.fromiter([r["session_id"] for r in batch], np.int64, n))
        arrays["flags"].write(np.fromiter(
            [r["has_error"] + 2 * r["has_warn"] for r in batch], np.uint8, n))
        known = self.services
        arrays["service"].write(np.fromiter(
            [known[name] if name in known else self._new_service(name)
             for name in [r["service_name"] for r in batch]], np.uint16, n))
        arrays["record_offsets"].write(np.fromiter(
            [-1 if r.get("_offset") is None else r["_offset"] for r in batch], np.int64, n))
        self.keys.add([record.get("session_key") for record in batch])

    def _new_service(self, name: str) -> int:
        if len(self.services) > np.iinfo(np.uint16).max:
            raise DataError(f"more than {np.iinfo(np.uint16).max + 1} distinct service names")
        index = self.services[name] = len(self.services)
        return index

    def close(self) -> dict:
        """Finish every file; returns the counts meta.json needs."""
        for appender in self.arrays.values():
            appender.close()
        return {"n_sessions": self.arrays["session_ids"].count,
                "n_events": self.arrays["events"].count,
                "max_event_id": self.arrays["events"].max_value,
                "has_session_keys": self.keys.close()}

    def abandon(self) -> None:
        for appender in self.arrays.values():
            appender.abandon()
        if self.keys.handle is not None:
            self.keys.handle.close()



def default_workers() -> int:
    """Day files prepared at once (processes): the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))

def _write_custom_tokens(source: Path, directory: Path, options: dict) -> None:
    """Second pass, only for a "custom" token layout: store every session's unpadded
    token_ids. Rare, so it may cost a re-read; the first pass stays lean."""
    record_offsets = np.load(directory / "record_offsets.npy")
    tokens = _NpyAppender(directory / "tokens.npy", np.int32)
    token_offsets = _NpyAppender(directory / "token_offsets.npy", np.int64)
    token_offsets.write([0])
    done = total = 0
    batches = iter_session_batches(source, fields=("session_id",) + TOKEN_FIELDS,
                                   report=ReadReport(), vocab_size=options["vocab_size"],
                                   max_seq_length=options["max_seq_length"])
    try:
        try:
            for batch in batches:
                offsets = [-1 if r["_offset"] is None else r["_offset"] for r in batch]
                if offsets != record_offsets[done:done + len(batch)].tolist():
                    raise DataError("the file changed while it was being prepared; run again",
                                    file=str(source))
                active = [[] if r["token_ids"] is None
                          else active_tokens(r["token_ids"], r["attention_mask"])
                          for r in batch]
                lengths = np.fromiter(map(len, active), np.int64, len(active))
                tokens.write(np.fromiter(chain.from_iterable(active), np.int32,
                                         int(lengths.sum())))
                token_offsets.write(total + np.cumsum(lengths))
                total += int(lengths.sum())
                done += len(batch)
        except DataError:
            if done != record_offsets.size:     # damage after the good prefix is expected
                raise
    except BaseException:
        tokens.abandon()
        token_offsets.abandon()
        raise
    tokens.close()
    token_offsets.close()


def _length_stats(offsets: np.ndarray, max_seq_length: int) -> dict:
    lengths = np.diff(offsets)
    if lengths.size == 0:
        return {"min": 0, "max": 0, "mean": 0.0, "p50": 0, "p90": 0, "p99": 0, "n_long": 0}
    p50, p90, p99 = np.percentile(lengths, [50, 90, 99], method="higher")
    return {"min": int(lengths.min()), "max": int(lengths.max()),
            "mean": round(float(lengths.mean()), 3), "p50": int(p50), "p90": int(p90),
            "p99": int(p99), "n_long": int(np.count_nonzero(lengths > max_seq_length))}


def _n_repeated(session_ids: np.ndarray) -> int:
    """Sessions whose session_id an earlier session of the day already has."""
    return int(session_ids.size - np.unique(session_ids).size)


def _day_meta(directory: Path, writer: _DayWriter, counts: dict, checker: TokenLayoutChecker,
              source: Path, stat: os.stat_result, report: ReadReport, options: dict) -> dict:
    """meta.json for a finished day directory (reads back only the per-session arrays)."""
    flags = np.load(directory / "flags.npy")
    service = np.load(directory / "service.npy")
    names = list(writer.services)
    service_counts = np.bincount(service, minlength=len(names)) if names else []
    truncated = report.to_dict()["truncated"]
    return {
        "format_version": FORMAT_VERSION,
        "source": {"name": source.name, "path": str(source.resolve()),
                   **source_signature(source, stat)},
        "options": options,
        "n_sessions": counts["n_sessions"], "n_events": counts["n_events"],
        "services": names,
        "service_counts": {name: int(n) for name, n in zip(names, service_counts)},
        "n_error": int(np.count_nonzero(flags & ERROR_BIT)),
        "n_warn": int(np.count_nonzero(flags & WARN_BIT)),
        "lengths": _length_stats(np.load(directory / "offsets.npy"), options["max_seq_length"]),
        "max_event_id": counts["max_event_id"],
        "token_ids_layout": checker.layout,
        "token_ids": {"layouts": dict(checker.layouts),
                      "max_padded_length": checker.max_padded_length},
        "has_session_keys": counts["has_session_keys"],
        "n_duplicate_ids": _n_repeated(np.load(directory / "session_ids.npy")),
        "report": report.to_dict(),
        "truncated": truncated,
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------- prepare

@dataclasses.dataclass
class PrepareResult:
    """What preparing (or finding already prepared) one day file gave."""

    path: str                         # the source day file
    cache_dir: str                    # its day directory in the cache
    n_sessions: int
    n_events: int
    skipped: bool                     # already prepared and unchanged
    report: ReadReport
    truncated: DataError | None       # the damage in a truncated/corrupt source, if any
    seconds: float = 0.0
    source_bytes: int = 0
    n_duplicate_ids: int = 0          # sessions repeating a session_id of their day

    def to_dict(self) -> dict:
        """Plain data; ``truncated`` travels inside the report."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["report"], data["truncated"] = self.report.to_dict(), None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> PrepareResult:
        """Rebuild (across a process boundary, where pickling would lose DataError fields)."""
        report = ReadReport.from_dict(data["report"])
        return cls(**{**data, "report": report, "truncated": report.truncated})


def _clean_stale(final: Path) -> None:
    """Remove temp/old directories of ``final`` left by prepares that died."""
    leftovers = [*final.parent.glob(f".{final.name}.tmp-*"),
                 *final.parent.glob(f".{final.name}.old-*")]
    for leftover in leftovers:
        try:
            pid = int(leftover.name.rsplit("-", 2)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(leftover, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _install(temp: Path, final: Path) -> None:
    """Move a finished day directory into place, replacing an older one."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
    os.rename(temp, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_arrays(source: Path, temp: Path, options: dict, report: ReadReport,
                  strict: bool) -> tuple[_DayWriter, dict, TokenLayoutChecker]:
    """Stream the good records of ``source`` into the arrays under ``temp``."""
    writer, checker = _DayWriter(temp), TokenLayoutChecker(options["vocab_size"])
    try:
        batches = iter_session_batches(
            source, raw_fields=TOKEN_FIELDS, strict=strict, report=report,
            max_seq_length=options["max_seq_length"], vocab_size=options["vocab_size"],
            batch_check=checker)
        try:
            for batch in batches:
                writer.add(batch)
        except DataError as error:
            if strict:
                raise
            report.truncated = report.truncated or error   # keep the good prefix
    except BaseException:
        writer.abandon()
        raise
    counts = writer.close()
    if checker.layout == LAYOUT_CUSTOM:
        _write_custom_tokens(source, temp, options)
    return writer, counts, checker


def prepare_file(path, cache_dir, *, max_seq_length: int = 512, strict: bool = False,
                 vocab_size: int | None = None) -> PrepareResult:
    """Convert one day file into its cache directory (atomically: temp dir + rename).

    A truncated or corrupt file keeps its good prefix, with ``meta["truncated"]`` set
    and ``result.truncated`` naming the damage; with ``strict`` a bad record or damage
    raises DataError and nothing is written.
    """
    started, source = time.perf_counter(), Path(path)
    final = cache_dir_for(source, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(final)
    stat = source.stat()
    temp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    options = {"max_seq_length": max_seq_length, "vocab_size": vocab_size, "strict": strict}
    report = ReadReport()
    try:
        writer, counts, checker = _write_arrays(source, temp, options, report, strict)
        meta = _day_meta(temp, writer, counts, checker, source, stat, report, options)
        _write_meta(temp, meta)
        _install(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return PrepareResult(str(source), str(final), counts["n_sessions"], counts["n_events"],
                         False, report, report.truncated, time.perf_counter() - started,
                         stat.st_size, meta["n_duplicate_ids"])


def _write_meta(directory: Path, meta: dict) -> None:
    atomic_write_text(directory / META_NAME, json.dumps(meta, ensure_ascii=False, indent=2))


def _cached_result(path: Path, cache_dir) -> PrepareResult:
    day_dir = cache_dir_for(path, cache_dir)
    meta = read_meta(day_dir)
    report = ReadReport.from_dict(meta["report"])
    return PrepareResult(str(path), str(day_dir), meta["n_sessions"], meta["n_events"], True,
                         report, report.truncated, 0.0, meta["source"]["size"],
                         meta.get("n_duplicate_ids", 0))


def _needs_prepare(path: Path, cache_dir, strict: bool, vocab_size: int | None) -> bool:
    if not is_prepared_and_fresh(path, cache_dir, vocab_size=vocab_size):
        return True
    # A strict run must fail on a cache that was prepared leniently from bad data.
    meta = read_meta(cache_dir_for(path, cache_dir))
    return strict and (meta["report"]["n_bad"] > 0 or meta["truncated"] is not None)


def _prepare_in_worker(path: str, cache_dir: str, options: dict) -> dict:
    """Process-pool entry: DataError travels back as a dict (pickling drops its fields)."""
    try:
        return {"result": prepare_file(path, cache_dir, **options).to_dict()}
    except DataError as error:
        return {"error": {"message": str(error), "file": error.file, "offset": error.offset,
                          "index": error.index}}


def prepare_files(paths, cache_dir, *, workers: int = 1, max_seq_length: int = 512,
                  strict: bool = False, vocab_size: int | None = None,
                  progress_callback: Callable | None = None) -> list[PrepareResult]:
    """Prepare many day files, skipping those already prepared and unchanged.

    ``workers`` > 1 converts files in parallel processes (largest first);
    ``progress_callback(path, n_done)`` runs in this process after each file. Results
    come back in the order of ``paths``.
    """
    paths = [Path(path) for path in paths]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DataError(f"{missing[0]}: no such day file")
    options = {"max_seq_length": max_seq_length, "strict": strict, "vocab_size": vocab_size}
    results: dict[Path, PrepareResult] = {}
    todo: list[Path] = []
    for path in dict.fromkeys(paths):       # a file listed twice is prepared once
        if _needs_prepare(path, cache_dir, strict, vocab_size):
            todo.append(path)
        else:
            results[path] = _cached_result(path, cache_dir)
            _progress(progress_callback, path, len(results))
    todo.sort(key=lambda path: path.stat().st_size, reverse=True)
    if workers <= 1 or len(todo) <= 1:
        for path in todo:
            results[path] = prepare_file(path, cache_dir, **options)
            _progress(progress_callback, path, len(results))
    else:
        _prepare_parallel(todo, cache_dir, options, min(workers, len(todo)), results,
                          progress_callback)
    return [results[path] for path in paths]


def _progress(callback: Callable | None, path: Path, n_done: int) -> None:
    if callback is not None:
        callback(path, n_done)


def _prepare_parallel(todo: list[Path], cache_dir, options: dict, workers: int,
                      results: dict, progress_callback: Callable | None) -> None:
    # spawn, not fork: the parent may hold torch/CUDA or threads that fork would copy badly.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_prepare_in_worker, str(path), str(cache_dir), options): path
                   for path in todo}
        for future in concurrent.futures.as_completed(futures):
            outcome = future.result()
            if "error" in outcome:
                for other in futures:
                    other.cancel()
                raise rebuild_data_error(outcome["error"])
            results[futures[future]] = PrepareResult.from_dict(outcome["result"])
            _progress(progress_callback, futures[future], len(results))
