"""Ground-truth label files: the one place their names and headers are spelled, read and written.

Two CSV forms are read: ``file,session_id,label[,...]`` (RADAR's own, written by
:func:`write_labels` for ``radar synth``, ``radar convert`` and ``radar ingest``;
extra columns such as ``anomaly_kind`` are informational) and LogHub's
``BlockId,Label`` (``Anomaly``/``Normal``), which joins on ``session_key``. A label is
1 for anomalous, 0 for normal. Files exported by spreadsheets (a UTF-8 byte-order
mark, ``\\r\\n`` line ends) read the same; two rows giving one session different
labels are an error, and so is a join that cannot tell sessions apart (one
``session_id`` twice in a day file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radar.data.textfiles import text_lines
from radar.errors import DataError
from radar.fsutil import atomic_write_text

LABELS_NAME = "labels.csv"                      # file,session_id,label[,extra...]
LABEL_HEADER = ("file", "session_id", "label")    # RADAR's own form, in this order
BLOCK_LABELS_NAME = "anomaly_label.csv"         # LogHub's BlockId,Label
BLOCK_COLUMNS = ("BlockId", "Label")
_TRUE = {"1", "anomaly", "abnormal", "true", "yes"}
_FALSE = {"0", "normal", "false", "no"}
_WHAT = "the label file"


def _parse_label(value: str | None, path: Path, line: int) -> int | None:
    """1, 0, or None for a blank label (not yet reviewed)."""
    text = (value or "").strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise DataError(f"label {value!r} is neither 0/1 nor Normal/Anomaly; fix the "
                    "label column", file=str(path), index=line)


@dataclass
class LabelTable:
    by_file_session: dict[tuple[str, int], int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)
    source: str = ""
    unreviewed: int = 0                    # rows skipped because their label was blank

    def describe(self) -> str:
        """One line: how many labels, how many anomalous, how many rows left blank."""
        labels = [*self.by_file_session.values(), *self.by_key.values()]
        text = f"{self.source}: {len(labels)} labelled sessions ({sum(labels)} anomalous)"
        return text + (f"; {self.unreviewed} rows not yet reviewed" if self.unreviewed else "")

    def lookup(self, file_name: str, session_ids: np.ndarray,
               session_keys: list[str] | None = None) -> np.ndarray:
        """Labels for one day's sessions: 1, 0, or -1 where the file has none.

        DataError when a labelled ``session_id`` occurs twice in the day: the join by
        (file, session_id) could not tell which session the label is for.
        """
        out = np.full(len(session_ids), -1, dtype=np.int8)
        stem = Path(file_name).name
        if self.by_file_session:
            self._check_unique(stem, session_ids)
            for i, sid in enumerate(session_ids.tolist()):
                out[i] = self.by_file_session.get((stem, sid), -1)
        if self.by_key and session_keys is not None:
            for i, key in enumerate(session_keys):
                if out[i] < 0:
                    out[i] = self.by_key.get(key, -1)
        return out

    def _check_unique(self, stem: str, session_ids: np.ndarray) -> None:
        values, counts = np.unique(np.asarray(session_ids), return_counts=True)
        for sid, count in zip(values[counts > 1].tolist(), counts[counts > 1].tolist()):
            if (stem, sid) in self.by_file_session:
                raise DataError(f"session_id {sid} occurs {count} times in {stem}, so the "
                                f"labels in {self.source} keyed by (file, session_id) cannot "
                                "tell those sessions apart; give every session of a day its "
                                "own session_id (`radar validate` lists repeats)")


def _header(reader, path: Path) -> dict[str, int]:
    try:
        names = next(reader)
    except StopIteration:
        raise DataError("the label file is empty; expected a header 'file,session_id,label' "
                        "or 'BlockId,Label'", file=str(path)) from None
    return {name.strip().lower(): i for i, name in enumerate(names)}


def _rows(reader, width: int) -> Iterable[tuple[int, list[str]]]:
    """(row number, row padded to ``width`` with blanks) for each row that is not empty;
    the header is row 1 (rows, not lines: a quoted cell may hold line breaks)."""
    number = 1
    for row in reader:
        if row and any(cell.strip() for cell in row):
            number += 1
            yield number, row + [""] * (width - len(row))


def read_labels(path: str | Path) -> LabelTable:
    """Read a label CSV in either supported form (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("label file does not exist; pass the CSV written by `radar synth` "
                        "or a LogHub anomaly_label.csv", file=str(path))
    table = LabelTable(source=str(path))
    reader = csv.reader(text_lines(path, _WHAT))
    try:
        columns = _header(reader, path)
        if set(LABEL_HEADER) <= columns.keys():
            _read_rows(table, table.by_file_session, reader, columns, path, _file_session_key)
        elif {"blockid", "label"} <= columns.keys():
            _read_rows(table, table.by_key, reader, columns, path,
                       lambda row, columns: row[columns["blockid"]].strip())
        else:
            raise DataError("unrecognised label header; expected 'file,session_id,label' or "
                            f"'BlockId,Label', found {sorted(columns)}", file=str(path))
    except csv.Error as exc:
        raise DataError(f"not a CSV table ({exc})",
                        file=str(path), index=reader.line_num) from None
    return table


def _file_session_key(row: list[str], columns: dict[str, int]) -> tuple[str, int]:
    return Path(row[columns["file"]].strip()).name, int(row[columns["session_id"]].strip())


def _read_rows(table: LabelTable, target: dict, reader, columns: dict[str, int], path: Path,
               key_of) -> None:
    """Fill ``target`` {key: label}; two rows with different labels for one key are an error."""
    first_line: dict = {}
    width = max(columns.values()) + 1
    for line, row in _rows(reader, width):
        label = _parse_label(row[columns["label"]], path, line)
        if label is None:
            table.unreviewed += 1
            continue
        try:
            key = key_of(row, columns)
        except ValueError:
            raise DataError(f"session_id {row[columns['session_id']]!r} is not an integer",
                            file=str(path), index=line) from None
        known = target.get(key)
        if known is not None and known != label:
            name = f"session {key[1]} of {key[0]}" if isinstance(key, tuple) else repr(key)
            raise DataError(f"{name} is labelled {label} here but {known} in record "
                            f"{first_line[key]}; keep one row per session", file=str(path),
                            index=line)
        target[key] = label
        first_line.setdefault(key, line)


# ---------------------------------------------------------------- writing

def labels_text(rows: Iterable[tuple], extra_columns: tuple[str, ...] = ()) -> str:
    """``file,session_id,label[,extra...]`` CSV text for ``rows`` of matching tuples."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LABEL_HEADER + tuple(extra_columns))
    writer.writerows(rows)
    return buffer.getvalue()


def write_labels(path: Path, rows: Iterable[tuple], extra_columns: tuple[str, ...] = ()
                 ) -> None:
    """Write RADAR's label file atomically (rows: file name, session_id, label, extras)."""
    atomic_write_text(path, labels_text(rows, extra_columns))


def write_block_labels(path: Path, rows: Iterable[tuple[str, int]]) -> None:
    """LogHub's ``BlockId,Label`` form (session_key, 1/0 -> Anomaly/Normal), atomically."""
    lines = [",".join(BLOCK_COLUMNS)] + [f"{key},{'Anomaly' if label else 'Normal'}"
                                         for key, label in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def check_labels_header(path: Path) -> None:
    """DataError unless ``path`` is absent or a ``file,session_id,label`` table (so a writer
    that keeps its other rows may touch it)."""
    if not path.exists():
        return
    header = next(csv.reader(text_lines(path, _WHAT)), [])
    if tuple(name.strip().lower() for name in header[:3]) != LABEL_HEADER:
        raise DataError(f"{path} exists but is not a file,session_id,label table (header "
                        f"{header}); move it away so RADAR can write its labels there")


def rows_of_other_files(path: Path, replaced: set[str]) -> list[list[str]]:
    """The data rows of an existing label file whose day file is not in ``replaced``."""
    if not path.exists():
        return []
    reader = csv.reader(text_lines(path, _WHAT))
    next(reader, None)
    return [row for row in reader if row and row[0] not in replaced]
