"""``triage.parquet``: a run's results as a table the triage page and a notebook query in place.

A run at the user's scale writes ~30M result records (~20 GB of JSON): too many to load
for every page view. :func:`write_store` streams ``anomaly_results.json`` once (bounded
memory: :data:`ROW_GROUP` records at a time) into a Parquet file beside it, written
atomically. One row per session, in results-file order (``row`` is the record's index):

=================  ===========================================================
row                int64, the record's index in anomaly_results.json
file, day          the day file and its date (YYYY-MM-DD from the name, else the name)
session_id         int64; ``session_key`` string (may be null)
service            service_name
score, threshold   float64 (the run's combined score and its threshold)
flagged            bool (``is_anomaly``)
severity           string (NORMAL..CRITICAL; null in single-detector runs)
severity_rank      int8: index into NORMAL..CRITICAL, -1 without severity
has_error/warn     bool; ``length`` int32 (events)
agreement          int8: how many detectors flagged it on their own thresholds
n_detectors        int8
members            list<struct<name, score, normalized, flagged>>: each detector's say
explained_by       the detector whose explanation the record carries
reasons            list<string>: severity_reasons
top_event_id       int64 of the most surprising event (null: unseen/end)
top_kind           event | unseen | end
top_probability    float64, the model's probability of that event
group_event        group key: the most surprising event (radar.triage.groups)
group_path         group key: the explained events' path
group_label        the first key in words
top                string, JSON of top_positions (with source, and code for flagged
                   rows); read for one session's detail only
=================  ===========================================================

Queries use :mod:`pyarrow.dataset` filters (row-group statistics skip what they can)
and :mod:`pyarrow.compute`; nothing else is indexed. A notebook reads the same file::

    import pyarrow.dataset as ds
    t = ds.dataset("RUN/triage.parquet").to_table(filter=ds.field("flagged"))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from radar.errors import RadarError
from radar.fsutil import atomic_write
from radar.results import LEVELS, iter_results
from radar.rundir import RESULTS
from radar.triage.groups import group_keys

STORE_NAME = "triage.parquet"
STORE_VERSION = "1"
ROW_GROUP = 65_536
_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")
_META_SIZE, _META_MTIME, _META_VERSION = (b"radar.results_size", b"radar.results_mtime_ns",
                                          b"radar.store_version")

MEMBER = pa.struct([("name", pa.string()), ("score", pa.float64()),
                    ("normalized", pa.float64()), ("flagged", pa.bool_())])
SCHEMA = pa.schema([
    ("row", pa.int64()), ("file", pa.string()), ("day", pa.string()),
    ("session_id", pa.int64()), ("session_key", pa.string()), ("service", pa.string()),
    ("score", pa.float64()), ("threshold", pa.float64()), ("flagged", pa.bool_()),
    ("severity", pa.string()), ("severity_rank", pa.int8()), ("has_error", pa.bool_()),
    ("has_warn", pa.bool_()), ("length", pa.int32()), ("agreement", pa.int8()),
    ("n_detectors", pa.int8()), ("members", pa.list_(MEMBER)), ("explained_by", pa.string()),
    ("reasons", pa.list_(pa.string())), ("top_event_id", pa.int64()),
    ("top_kind", pa.string()), ("top_probability", pa.float64()),
    ("group_event", pa.string()), ("group_path", pa.string()), ("group_label", pa.string()),
    ("top", pa.string()),
])
# What the list needs per row (the detail reads the rest of one row).
LIST_COLUMNS = ("row", "file", "day", "session_id", "session_key", "service", "score",
                "threshold", "severity", "severity_rank", "has_error", "agreement",
                "n_detectors", "top_kind", "top_probability", "group_event", "group_path",
                "group_label")
GROUP_BY = {"event": "group_event", "path": "group_path"}


def store_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STORE_NAME


def day_of(file_name: str) -> str:
    """The date in a day file's name (YYYY-MM-DD), else the name itself."""
    match = _DAY.search(file_name or "")
    return match.group(1) if match else (file_name or "")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _level(value: Any) -> int:
    return LEVELS.index(value) if value in LEVELS else -1


def store_row(index: int, record: dict[str, Any], templates: dict[str, str] | None = None
              ) -> dict[str, Any]:
    """One record as a row of :data:`SCHEMA`."""
    members = []
    for name, say in (record.get("detectors") or {}).items():
        if isinstance(say, dict):
            members.append({"name": str(name), "score": _number(say.get("score")),
                            "normalized": _number(say.get("normalized")),
                            "flagged": bool(say.get("flagged"))})
    positions = [item for item in (record.get("top_positions") or []) if isinstance(item, dict)]
    first = positions[0] if positions else {}
    group_event, group_path, group_label = group_keys(record, templates)
    flagged = bool(record.get("is_anomaly"))
    file_name = str(record.get("file") or "")
    severity = record.get("severity")
    event_id = first.get("event_id")
    return {
        "row": index, "file": file_name, "day": day_of(file_name),
        "session_id": int(record["session_id"]), "session_key": record.get("session_key"),
        "service": str(record.get("service_name") or "unknown"),
        "score": _number(record.get("anomaly_score")),
        "threshold": _number(record.get("threshold")), "flagged": flagged,
        "severity": severity if isinstance(severity, str) else None,
        "severity_rank": _level(severity), "has_error": bool(record.get("has_error")),
        "has_warn": bool(record.get("has_warn")),
        "length": int(record["length"]) if isinstance(record.get("length"), int) else None,
        "agreement": sum(member["flagged"] for member in members) if members else int(flagged),
        "n_detectors": len(members) or 1, "members": members,
        "explained_by": record.get("explained_by"),
        "reasons": [str(reason) for reason in record.get("severity_reasons") or []],
        "top_event_id": event_id if isinstance(event_id, int) else None,
        "top_kind": first.get("kind"), "top_probability": _number(first.get("probability")),
        "group_event": group_event, "group_path": group_path, "group_label": group_label,
        "top": json.dumps(positions, allow_nan=True),
    }


def _results_stamp(results: Path) -> dict[bytes, bytes]:
    stat = results.stat()
    return {_META_SIZE: str(stat.st_size).encode(), _META_MTIME: str(stat.st_mtime_ns).encode(),
            _META_VERSION: STORE_VERSION.encode()}


def is_current(run_dir: str | Path) -> bool:
    """Whether ``triage.parquet`` exists and was built from the results file as it is now."""
    run_dir = Path(run_dir)
    path, results = store_path(run_dir), run_dir / RESULTS
    if not path.is_file() or not results.is_file():
        return False
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False                    # damaged or cut short: build it again
    return all(metadata.get(key) == value for key, value in _results_stamp(results).items())


def run_templates(run_dir: Path) -> dict[str, str] | None:
    """The run's ``templates.tsv`` (event id -> text), when its data folder has one."""
    from radar.rundir import RunDir
    from radar.source.annotate import TEMPLATES_NAME
    from radar.source.link import read_templates

    try:
        data = (RunDir.open(run_dir).config() or {}).get("data") or {}
    except RadarError:
        return None
    folder = data.get("preprocessed_dir")
    path = Path(folder) / TEMPLATES_NAME if folder else None
    if path is None or not path.is_file():
        return None
    try:
        return {str(key): value for key, value in read_templates(path).items()}
    except RadarError:
        return None


def _batches(results: Path, templates, progress) -> Iterator[pa.RecordBatch]:
    rows: list[dict] = []
    for index, record in enumerate(iter_results(results)):
        rows.append(store_row(index, record, templates))
        if len(rows) == ROW_GROUP:
            yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)
            rows = []
            if progress is not None:
                progress(index + 1)
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=SCHEMA)


def write_store(run_dir: str | Path, *, progress=None) -> Path:
    """Build ``RUN_DIR/triage.parquet`` from ``RUN_DIR/anomaly_results.json``, streamed and
    atomic; returns its path. ``progress(records_so_far)`` is called per row group."""
    run_dir = Path(run_dir)
    results = run_dir / RESULTS
    if not results.is_file():
        raise RadarError(f"{results} does not exist: the run has not scored its validation "
                         "days yet; finish `radar run` first")
    stamp = _results_stamp(results)           # before reading: a rewrite makes it stale
    path = store_path(run_dir)
    templates = run_templates(run_dir)
    schema = SCHEMA.with_metadata(stamp)
    with atomic_write(path, "wb") as handle:
        writer = pq.ParquetWriter(handle, schema, compression="zstd")
        try:
            for batch in _batches(results, templates, progress):
                writer.write_batch(batch, row_group_size=ROW_GROUP)
        finally:
            writer.close()
    return path


def ensure_store(run_dir: str | Path, *, progress=None) -> Path:
    """The run's store, built first when missing or older than its results file."""
    if not is_current(run_dir):
        write_store(run_dir, progress=progress)
    return store_path(run_dir)


# ------------------------------------------------------------------- queries

@dataclass
class Filters:
    """What the page filters flagged sessions on; empty lists mean 'any'."""

    services: tuple[str, ...] = ()
    days: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    min_agreement: int = 0
    group: str | None = None          # a group key of ``group_by``
    group_by: str = "event"
    flagged: str = "yes"              # yes | no (the run's misses are among these) | any

    def expression(self) -> ds.Expression | None:
        parts = []
        if self.flagged == "yes":
            parts.append(ds.field("flagged"))
        elif self.flagged == "no":
            parts.append(~ds.field("flagged"))
        if self.services:
            parts.append(ds.field("service").isin(list(self.services)))
        if self.days:
            parts.append(ds.field("day").isin(list(self.days)))
        if self.severities:
            parts.append(ds.field("severity").isin(list(self.severities)))
        if self.min_agreement:
            parts.append(ds.field("agreement") >= self.min_agreement)
        if self.group is not None:
            parts.append(ds.field(GROUP_BY[self.group_by]) == self.group)
        if not parts:
            return None
        expression = parts[0]
        for part in parts[1:]:
            expression = expression & part
        return expression


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _records(table: pa.Table) -> list[dict[str, Any]]:
    return [{key: _finite(value) for key, value in row.items()} for row in table.to_pylist()]


def _ranked(table: pa.Table) -> pa.Table:
    """Most severe first, then highest score, then file order (stable pages)."""
    score = pc.fill_null(table["score"], float("-inf"))
    table = table.append_column("_score", score)
    order = pc.sort_indices(table, sort_keys=[("severity_rank", "descending"),
                                              ("_score", "descending"),
                                              ("row", "ascending")])
    return table.take(order).drop_columns(["_score"])


class TriageStore:
    """Queries over one run's ``triage.parquet`` (immutable once built)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.dataset = ds.dataset(self.path, format="parquet")
        except (pa.ArrowInvalid, OSError) as exc:
            raise RadarError(f"{self.path} is damaged ({exc}); delete it and it is rebuilt "
                             "from anomaly_results.json") from None
        self._facets: dict | None = None

    def _scan(self, columns, filters: Filters) -> pa.Table:
        return self.dataset.to_table(columns=list(columns), filter=filters.expression())

    def page(self, filters: Filters, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """One page of flagged sessions, most severe first, and how many match."""
        table = self._scan(("row", "severity_rank", "score"), filters)
        ranked = _ranked(table)
        rows = ranked["row"].slice(offset, limit)
        full = self.dataset.to_table(columns=list(LIST_COLUMNS),
                                     filter=ds.field("row").isin(rows.to_pylist()))
        by_row = {record["row"]: record for record in _records(full)}
        return {"total": table.num_rows, "offset": offset, "limit": limit,
                "sessions": [by_row[row] for row in rows.to_pylist() if row in by_row]}

    def groups(self, filters: Filters, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """Groups of the matching sessions, largest first: key, label, size, worst
        severity, highest score."""
        key = GROUP_BY[filters.group_by]
        table = self._scan((key, "group_label", "severity_rank", "score", "row"), filters)
        table = table.append_column("_score", pc.fill_null(table["score"], float("-inf")))
        counted = table.group_by(key, use_threads=False).aggregate([
            ("row", "count"), ("severity_rank", "max"), ("_score", "max"),
            ("group_label", "first"), ("row", "min")])
        order = pc.sort_indices(counted, sort_keys=[("row_count", "descending"),
                                                    ("severity_rank_max", "descending"),
                                                    ("_score_max", "descending"),
                                                    ("row_min", "ascending")])
        counted = counted.take(order)
        groups = []
        for item in _records(counted.slice(offset, limit)):
            rank = item["severity_rank_max"]
            groups.append({"key": item[key], "label": item["group_label_first"],
                           "size": item["row_count"], "max_score": item["_score_max"],
                           "severity": LEVELS[rank] if rank is not None and rank >= 0
                           else None})
        return {"total": counted.num_rows, "sessions": table.num_rows, "offset": offset,
                "limit": limit, "by": filters.group_by, "groups": groups}

    def group_sessions(self, filters: Filters) -> list[tuple[str, int]]:
        """(file, session_id) of every session matching ``filters`` (a group's members)."""
        table = self._scan(("file", "session_id"), filters)
        return list(zip(table["file"].to_pylist(), table["session_id"].to_pylist()))

    def flags_of(self, sessions: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:
        """Whether the run flagged each of these (file, session_id); absent ones are not
        in its results."""
        wanted = set(sessions)
        table = self.dataset.to_table(
            columns=["file", "session_id", "flagged"],
            filter=ds.field("session_id").isin(sorted({sid for _, sid in wanted})))
        return {key: flag for key, flag in zip(
            zip(table["file"].to_pylist(), table["session_id"].to_pylist()),
            table["flagged"].to_pylist()) if key in wanted}

    def session(self, row: int) -> dict[str, Any] | None:
        """Every column of one session (by its ``row``), ``top`` decoded."""
        table = self.dataset.to_table(filter=ds.field("row") == int(row))
        if not table.num_rows:
            return None
        record = _records(table.slice(0, 1))[0]
        record["top"] = json.loads(record["top"]) if record.get("top") else []
        return record

    def facets(self) -> dict[str, Any]:
        """Flagged sessions per service, day, severity and agreement (for the filters)."""
        if self._facets is None:
            table = self._scan(("service", "day", "severity", "agreement", "n_detectors"),
                               Filters())
            out: dict[str, Any] = {"flagged": table.num_rows}
            for column in ("service", "day", "severity", "agreement"):
                counted = table.group_by(column).aggregate([(column, "count")])
                pairs = sorted(zip(counted[column].to_pylist(),
                                   counted[f"{column}_count"].to_pylist()),
                               key=lambda pair: (pair[0] is None, pair[0]))
                out[column] = [{"value": value, "count": count} for value, count in pairs]
            out["severity"].sort(key=lambda item: -LEVELS.index(item["value"])
                                 if item["value"] in LEVELS else 1)
            detectors = table["n_detectors"]
            out["n_detectors"] = int(pc.max(detectors).as_py() or 1) if len(detectors) else 1
            self._facets = out
        return self._facets

    def total(self) -> int:
        return self.dataset.count_rows()


def open_store(run_dir: str | Path) -> TriageStore:
    """The run's store, built first when missing or stale."""
    return TriageStore(ensure_store(run_dir))
