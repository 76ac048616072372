"""The data validator: one streaming pass over the day files, summarised for people.

Replaces the user's ``json.load`` validator, which cannot open a 1.6 GB file. Memory
stays flat: sequence lengths go into a histogram keyed by length, events into a
counter keyed by id. A corrupt file is reported with its byte offset and the pass
moves on to the next file.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing
import os
from array import array
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from radar.data.files import day_of
from radar.data.reader import iter_sessions
from radar.data.records import ReadReport, active_tokens, matches_cls_events_sep
from radar.errors import DataError

# Every field a record may have, so each is type-checked (original_logs costs ~20% more
# reading than leaving it out, measured on a synth day).
STAT_FIELDS = ("session_id", "event_sequence", "token_ids", "attention_mask", "has_error",
               "has_warn", "service_name", "session_key", "original_logs")
MAX_EXAMPLES = 5


@dataclass
class LengthHistogram:
    """Exact counts per sequence length: bounded by the longest session, not by their number."""
    counts: Counter = field(default_factory=Counter)

    def add(self, length: int) -> None:
        self.counts[length] += 1

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> int:
        """The smallest length with at least ``q`` percent of sessions at or below it."""
        total, seen = self.n, 0
        for length in sorted(self.counts):
            seen += self.counts[length]
            if seen * 100 >= q * total:
                return length
        return 0

    def summary(self) -> dict:
        if not self.counts:
            return {"mean": 0.0, "min": 0, "max": 0, "p50": 0, "p90": 0, "p99": 0}
        mean = sum(length * c for length, c in self.counts.items()) / self.n
        return {"mean": round(mean, 2), "min": min(self.counts), "max": max(self.counts),
                "p50": self.percentile(50), "p90": self.percentile(90),
                "p99": self.percentile(99)}


@dataclass
class FileStats:
    path: str
    day: str | None
    size_bytes: int
    n_sessions: int = 0
    n_bad: int = 0
    error: str | None = None        # set when the file is unreadable or corrupt
    error_offset: int | None = None


@dataclass
class ServiceStats:
    n_sessions: int = 0
    n_error: int = 0
    n_warn: int = 0
    n_events: int = 0

    def to_dict(self) -> dict:
        n = max(self.n_sessions, 1)
        return {"sessions": self.n_sessions, "error_share": round(self.n_error / n, 4),
                "warn_share": round(self.n_warn / n, 4),
                "mean_length": round(self.n_events / n, 2)}


@dataclass
class DatasetStats:
    """Everything ``radar validate`` reports; :meth:`to_dict` is its ``--json`` form."""
    max_seq_length: int
    vocab_size: int | None
    files: list[FileStats] = field(default_factory=list)
    lengths: LengthHistogram = field(default_factory=LengthHistogram)
    services: dict[str, ServiceStats] = field(default_factory=dict)
    events: Counter = field(default_factory=Counter)
    n_over_max_length: int = 0      # sessions with more than max_seq_length - 2 events
    n_layout_ok: int = 0            # token_ids == [101] + events + [102] + padding
    layout_examples: list[dict] = field(default_factory=list)
    bad_counts: Counter = field(default_factory=Counter)
    bad_examples: list[dict] = field(default_factory=list)
    notices: Counter = field(default_factory=Counter)
    # per file with repeats: {"file", "n_repeated", "example"}; labels keyed by
    # (file, session_id) cannot tell such sessions apart
    duplicate_ids: list[dict] = field(default_factory=list)

    def merge(self, other: DatasetStats) -> None:
        """Add another part (usually one file's statistics) into this one."""
        self.files.extend(other.files)
        self.lengths.counts.update(other.lengths.counts)
        for name, part in other.services.items():
            mine = self.services.setdefault(name, ServiceStats())
            mine.n_sessions += part.n_sessions
            mine.n_error += part.n_error
            mine.n_warn += part.n_warn
            mine.n_events += part.n_events
        self.events.update(other.events)
        self.n_over_max_length += other.n_over_max_length
        self.n_layout_ok += other.n_layout_ok
        self.layout_examples = (self.layout_examples + other.layout_examples)[:MAX_EXAMPLES]
        self.bad_counts.update(other.bad_counts)
        self.bad_examples = (self.bad_examples + other.bad_examples)[:MAX_EXAMPLES]
        self.notices.update(other.notices)
        self.duplicate_ids.extend(other.duplicate_ids)

    @property
    def n_sessions(self) -> int:
        return sum(s.n_sessions for s in self.services.values())

    @property
    def unreadable(self) -> list[FileStats]:
        return [f for f in self.files if f.error is not None]

    @property
    def n_layout_mismatch(self) -> int:
        return self.n_sessions - self.n_layout_ok

    def date_range(self) -> tuple[str | None, str | None, int]:
        """First day, last day, and how many days in between have no file."""
        days = sorted({dt.date.fromisoformat(f.day) for f in self.files if f.day})
        if not days:
            return None, None, 0
        missing = (days[-1] - days[0]).days + 1 - len(days)
        return days[0].isoformat(), days[-1].isoformat(), missing

    def to_dict(self) -> dict:
        sizes = [f.size_bytes for f in self.files]
        n = max(self.n_sessions, 1)
        totals = ServiceStats(sum(s.n_sessions for s in self.services.values()),
                              sum(s.n_error for s in self.services.values()),
                              sum(s.n_warn for s in self.services.values()),
                              sum(s.n_events for s in self.services.values()))
        first, last, missing = self.date_range()
        return {
            "n_files": len(self.files),
            "first_day": first, "last_day": last, "missing_days": missing,
            "bytes": {"total": sum(sizes), "min": min(sizes, default=0),
                      "max": max(sizes, default=0)},
            "n_sessions": self.n_sessions,
            "sequence_length": self.lengths.summary(),
            "n_over_max_length": self.n_over_max_length,
            "max_seq_length": self.max_seq_length,
            "error_share": round(totals.n_error / n, 4),
            "warn_share": round(totals.n_warn / n, 4),
            "services": {name: s.to_dict() for name, s in sorted(self.services.items())},
            "vocabulary": {"distinct_events": len(self.events),
                           "max_event_id": max(self.events, default=None),
                           "vocab_size": self.vocab_size,
                           "n_events_out_of_vocab": (
                               sum(c for e, c in self.events.items() if e >= self.vocab_size)
                               if self.vocab_size else None),
                           "top_events": [[e, c] for e, c in self.events.most_common(10)]},
            "token_layout": {"ok": self.n_layout_ok, "mismatch": self.n_layout_mismatch,
                             "examples": self.layout_examples},
            "bad_records": {"total": sum(self.bad_counts.values()),
                            "by_kind": dict(self.bad_counts), "examples": self.bad_examples},
            "notices": dict(self.notices),
            "duplicate_session_ids": {
                "total": sum(d["n_repeated"] for d in self.duplicate_ids),
                "files": self.duplicate_ids},
            "files": [asdict(f) for f in self.files],
            "unreadable_files": [{"path": f.path, "error": f.error, "offset": f.error_offset}
                                 for f in self.unreadable],
        }


def token_layout_ok(events: list[int], token_ids: list[int],
                    attention_mask: list[int] | None) -> bool:
    """Whether ``token_ids`` is ``[101] + events + [102]`` (cut to fit) followed by padding."""
    return matches_cls_events_sep(active_tokens(token_ids, attention_mask), events,
                                  len(token_ids))


def _add_session(stats: DatasetStats, path: Path, record: dict) -> None:
    events = record["event_sequence"]
    service = stats.services.setdefault(str(record.get("service_name")), ServiceStats())
    service.n_sessions += 1
    service.n_error += bool(record.get("has_error"))
    service.n_warn += bool(record.get("has_warn"))
    service.n_events += len(events)
    stats.lengths.add(len(events))
    stats.events.update(events)
    stats.n_over_max_length += len(events) > stats.max_seq_length - 2
    token_ids = record.get("token_ids")
    if token_ids is not None and token_layout_ok(events, token_ids,
                                                 record.get("attention_mask")):
        stats.n_layout_ok += 1
    elif len(stats.layout_examples) < MAX_EXAMPLES:
        stats.layout_examples.append({"file": str(path), "index": record.get("_index"),
                                      "offset": record.get("_offset"),
                                      "session_id": record.get("session_id")})


def _merge_report(stats: DatasetStats, report: ReadReport) -> None:
    stats.bad_counts.update(report.bad_counts)
    stats.notices.update(report.notices)
    for bad in report.examples:
        if len(stats.bad_examples) < MAX_EXAMPLES:
            stats.bad_examples.append({"file": str(bad.file), "index": bad.index,
                                       "offset": bad.offset, "kind": bad.kind,
                                       "detail": bad.detail})


def collect_stats(files: list[str | os.PathLike], *, max_seq_length: int = 512,
                  vocab_size: int | None = None, strict: bool = False, workers: int = 1,
                  progress_callback=None) -> DatasetStats:
    """Stream every file once and gather :class:`DatasetStats`.

    Bad records are counted (by kind, with the first examples); a file that cannot be
    read to the end is listed in ``unreadable`` with the error and byte offset, after
    its good records have been counted. ``strict`` turns the first bad record into a
    file error. ``workers`` > 1 reads that many files at once in separate processes.
    ``progress_callback(path, n_done)`` is called after each file.
    """
    paths = [Path(f) for f in files]
    stats = DatasetStats(max_seq_length=max_seq_length, vocab_size=vocab_size)
    options = {"max_seq_length": max_seq_length, "vocab_size": vocab_size, "strict": strict}
    if workers > 1 and len(paths) > 1:
        # spawn: the parent may hold torch or threads, which forking copies badly
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(paths)), mp_context=context) as pool:
            parts = pool.map(functools.partial(file_stats, **options), paths)
            for n_done, (path, part) in enumerate(zip(paths, parts), start=1):
                stats.merge(part)
                if progress_callback is not None:
                    progress_callback(path, n_done)
        return stats
    for n_done, path in enumerate(paths, start=1):
        stats.merge(file_stats(path, **options))
        if progress_callback is not None:
            progress_callback(path, n_done)
    return stats


def file_stats(path: Path, *, max_seq_length: int, vocab_size: int | None,
               strict: bool) -> DatasetStats:
    """The statistics of one file (a unit of work for :func:`collect_stats`)."""
    stats = DatasetStats(max_seq_length=max_seq_length, vocab_size=vocab_size)
    day = day_of(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        stats.files.append(FileStats(str(path), day and day.isoformat(), 0,
                                     error=f"{path}: cannot read: {exc.strerror or exc}"))
        return stats
    info = FileStats(str(path), day and day.isoformat(), size)
    stats.files.append(info)
    report = ReadReport()
    ids = array("q")
    try:
        for record in iter_sessions(path, fields=STAT_FIELDS, strict=strict,
                                    max_seq_length=max_seq_length, vocab_size=vocab_size,
                                    report=report):
            info.n_sessions += 1
            ids.append(record["session_id"])
            _add_session(stats, path, record)
    except DataError as exc:
        info.error, info.error_offset = str(exc), exc.offset
    except OSError as exc:
        info.error = f"{path}: cannot read: {exc.strerror or exc}"
    info.n_bad = report.n_bad
    _merge_report(stats, report)
    _note_duplicates(stats, path, np.frombuffer(ids, dtype=np.int64))
    return stats


def _note_duplicates(stats: DatasetStats, path: Path, ids: np.ndarray) -> None:
    values, counts = np.unique(ids, return_counts=True)
    repeated = counts > 1
    if repeated.any():
        stats.duplicate_ids.append({"file": str(path),
                                    "n_repeated": int((counts[repeated] - 1).sum()),
                                    "example": int(values[repeated][0])})
