"""Day files: their name, finding them in date order, and the one writer that writes them.

The user's preprocessing writes one JSON array per day; the date in the file name
orders the files (a split by date and ``--limit-files N`` both rely on it). JSON
Lines files (``*.jsonl``) are accepted beside ``*.json``, but not both for one day:
they would be read twice (and share one cache directory). A name whose date is not a
real date (``2025-13-45``) is refused rather than sorted as undated.

:class:`DayFileWriter` streams session records into one JSON array; ``radar synth``,
``radar convert`` and ``radar ingest`` all write through it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import msgspec

from radar.data.labels import LABELS_NAME
from radar.errors import DataError, OutputError
from radar.fsutil import atomic_write

DEFAULT_PATTERN = "preprocessed_logs_*.json"
# What a dataset folder holds beside its day files (`radar synth`, `convert`, `ingest`).
DATASET_FILES = (LABELS_NAME, "templates.tsv")


def dataset_files(folder: Path) -> list[Path]:
    """The day files, labels.csv and templates.tsv already in ``folder`` (none when it
    does not exist)."""
    if not folder.is_dir():
        return []
    found = sorted(path for pattern in (DEFAULT_PATTERN, DEFAULT_PATTERN + "l")
                   for path in folder.glob(pattern) if path.is_file())
    return found + [folder / name for name in DATASET_FILES if (folder / name).is_file()]


def refuse_foreign_dataset(folder: Path, what_happens: str) -> None:
    """:class:`OutputError` (exit 2) when ``folder`` already holds a dataset's files:
    ``what_happens`` says what writing into it would do to them."""
    found = dataset_files(folder)
    if found:
        names = ", ".join(path.name for path in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise OutputError(f"{folder} already holds another dataset ({names}{more}); "
                          f"{what_happens}: write to an empty folder, or pass --force to "
                          "write over them")


def day_file_name(day: str | dt.date) -> str:
    """``preprocessed_logs_YYYY-MM-DD.json`` for a day (a date or its ISO text)."""
    return f"preprocessed_logs_{day.isoformat() if isinstance(day, dt.date) else day}.json"


# (opening, separator, closing) of a day file's JSON array
_STYLES = {"lines": (b"[\n", b",\n", b"\n]\n"), "json_dump": (b"[", b", ", b"]")}


class DayFileWriter:
    """Streams session records into a binary handle as one JSON array.

    ``style="lines"`` (the default) writes ``[``, one compact record per line, ``]``;
    ``style="json_dump"`` writes exactly what ``json.dump(records, f, ensure_ascii=False)``
    would (``radar synth`` promises that). ``continues=True`` carries on an array whose
    opening (and ``has_records`` records) the handle already holds (``--append``).
    """

    def __init__(self, handle: IO[bytes], *, style: str = "lines", continues: bool = False,
                 has_records: bool = False):
        opening, self._separator, self._closing = _STYLES[style]
        self.handle, self.n_records = handle, 0
        self._needs_separator = has_records
        if style == "json_dump":
            self._encode = lambda record: json.dumps(record, ensure_ascii=False).encode("utf-8")
        else:
            self._encode = msgspec.json.Encoder().encode
        if not continues:
            handle.write(opening)

    def write(self, record: dict[str, Any]) -> None:
        self.handle.write((self._separator if self._needs_separator else b"")
                          + self._encode(record))
        self._needs_separator = True
        self.n_records += 1

    def close(self) -> None:
        """Write the closing bracket (the caller closes the handle)."""
        self.handle.write(self._closing)


def write_day_file(path: Path, records: Iterable[dict[str, Any]], style: str = "lines") -> int:
    """Write a whole day file atomically; returns the number of records."""
    with atomic_write(path, "wb") as handle:
        writer = DayFileWriter(handle, style=style)
        for record in records:
            writer.write(record)
        writer.close()
    return writer.n_records

_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def day_of(path: str | os.PathLike) -> dt.date | None:
    """The ``YYYY-MM-DD`` date in a file's name (the last one if several), or None."""
    for match in reversed(list(_DATE.finditer(Path(path).name))):
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError:      # 2025-13-40 is a number, not a date
            continue
    return None


def sort_by_day(paths: list[Path]) -> list[Path]:
    """Files ordered by the date in their names; undated files first, by name."""
    return sorted(paths, key=lambda p: (day_of(p) or dt.date.min, p.name))


def require_days(paths: list[Path], why: str) -> None:
    """DataError naming the first file without a real date in its name (``why`` needs one)."""
    for path in paths:
        if day_of(path) is None:
            raise DataError(f"{path.name} has no YYYY-MM-DD date in its name, and {why}; "
                            "rename it to preprocessed_logs_YYYY-MM-DD.json", file=str(path))


def _check_names(paths: list[Path]) -> None:
    """Refuse impossible dates in names, and a .json and .jsonl twin of one day."""
    for path in paths:
        if day_of(path) is None and _DATE.search(path.name):
            raise DataError(f"{_DATE.search(path.name)[0]} in the file name is not a real date; "
                            "rename the file to the day it holds", file=str(path))
    stems: dict[str, Path] = {}
    for path in sorted(paths):
        twin = stems.setdefault(path.stem, path)
        if twin != path:
            raise DataError(f"{twin.name} and {path.name} both hold {path.stem} and would be "
                            "read twice; keep one of them", file=str(path.parent))


def find_day_files(path_or_dir: str | os.PathLike,
                   pattern: str = DEFAULT_PATTERN) -> list[Path]:
    """The day files under a folder (matching ``pattern``, and its ``.jsonl`` twin) by date.

    A path to a single file returns ``[that file]``.
    """
    path = Path(path_or_dir)
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataError(f"{path} does not exist; pass the folder holding the day files "
                        f"({pattern}), or make demo data with `radar synth DIR`")
    if not path.is_dir():
        raise DataError(f"{path} is neither a file nor a folder")
    patterns = [pattern]
    if pattern.endswith(".json"):
        patterns.append(pattern + "l")
    found = {p for pat in patterns for p in path.glob(pat) if p.is_file()}
    if not found:
        raise DataError(f"no files matching {' or '.join(patterns)} in {path}; point at the "
                        f"folder holding the day files, pass --pattern for other names, "
                        f"or make demo data with `radar synth DIR`")
    _check_names(list(found))
    return sort_by_day(list(found))
