"""Fetch a few original log lines of flagged sessions, for people reading a report.

The prepared cache keeps each record's byte offset in its day file, so a lookup
reads one record (:func:`radar.data.reader.read_record_at`). Without a cache the
day file is streamed once, stopping as soon as every wanted session was seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radar.data.cache import cache_dir_for, open_prepared
from radar.data.reader import DEFAULT_FIELDS, iter_sessions, read_record_at
from radar.errors import DataError

LINES_SHOWN = 5


def _from_cache(day_file: Path, cache_dir: Path, session_ids: set[int]) -> dict[int, list]:
    day_dir = cache_dir_for(day_file, cache_dir)
    try:
        day = open_prepared(day_dir)
    except DataError:
        return {}
    ids = np.asarray(day.session_ids)
    found = {}
    for row in np.flatnonzero(np.isin(ids, list(session_ids))):
        offset = int(day.record_offsets[row])
        if offset < 0:
            continue
        try:
            record = read_record_at(day_file, offset, fields=("session_id", "original_logs"))
        except (DataError, OSError):
            return {}   # the file changed since it was prepared: fall back to a scan
        if record.get("session_id") != int(ids[row]):
            return {}
        found[int(ids[row])] = record.get("original_logs") or []
    return found


def _from_scan(day_file: Path, session_ids: set[int]) -> dict[int, list]:
    found: dict[int, list] = {}
    try:
        for record in iter_sessions(day_file, fields=DEFAULT_FIELDS + ("original_logs",),
                                    with_offsets=False):
            if record["session_id"] in session_ids:
                found[record["session_id"]] = record.get("original_logs") or []
                if len(found) == len(session_ids):
                    break
    except DataError:
        pass   # a damaged tail: keep what was found before it
    return found


def original_logs(data_dir: str | Path | None, wanted: dict[str, set[int]], *,
                  cache_dir: str | Path | None = None) -> dict[tuple[str, int], list[str]]:
    """Original log lines of the wanted sessions, keyed by (day file name, session_id).

    Sessions whose day file is not in ``data_dir`` are simply absent from the result.
    """
    out: dict[tuple[str, int], list[str]] = {}
    if data_dir is None:
        return out
    for name, session_ids in wanted.items():
        day_file = Path(data_dir) / name
        if not day_file.is_file():
            continue
        found = _from_cache(day_file, Path(cache_dir), session_ids) if cache_dir else {}
        if len(found) < len(session_ids):
            found.update(_from_scan(day_file, session_ids - found.keys()))
        for sid, lines in found.items():
            out[(name, sid)] = [str(line) for line in lines]
    return out


def excerpt(lines: list[str], focus: int | None, n: int = LINES_SHOWN) -> list[dict]:
    """Up to ``n`` lines around position ``focus`` (the most surprising event), numbered."""
    if not lines:
        return []
    if focus is None or not 0 <= focus < len(lines):
        start = 0
    else:
        start = max(0, min(focus - n // 2, len(lines) - n))
    return [{"line": i, "text": lines[i], "focus": i == focus}
            for i in range(start, min(len(lines), start + n))]
