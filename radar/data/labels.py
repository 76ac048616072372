"""Ground-truth label files, joined to sessions by (file, session_id) or by session_key.

Two CSV forms are read: ``file,session_id,label[,...]`` (RADAR's own, written by
``radar synth``) and LogHub's ``BlockId,Label`` (``Anomaly``/``Normal``), which
joins on ``session_key``. A label is 1 for anomalous, 0 for normal; columns beyond
these are ignored, and a row whose label is blank (a ``radar review`` file not fully
filled in yet) is skipped and counted as not yet reviewed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radar.errors import DataError

LABEL_HEADER = ("file", "session_id", "label")    # RADAR's own form, in this order
_TRUE = {"1", "anomaly", "abnormal", "true", "yes"}
_FALSE = {"0", "normal", "false", "no"}


def _parse_label(value: str | None, path: Path, line: int) -> int | None:
    """1, 0, or None for a blank label (not yet reviewed)."""
    text = (value or "").strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise DataError(f"label {value!r} is neither 0/1 nor Normal/Anomaly; fix the label column",
                    file=str(path), index=line)


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
        """Labels for one day's sessions: 1, 0, or -1 where the file has none."""
        out = np.full(len(session_ids), -1, dtype=np.int8)
        stem = Path(file_name).name
        if self.by_file_session:
            for i, sid in enumerate(session_ids.tolist()):
                out[i] = self.by_file_session.get((stem, sid), -1)
        if self.by_key and session_keys is not None:
            for i, key in enumerate(session_keys):
                if out[i] < 0:
                    out[i] = self.by_key.get(key, -1)
        return out


def read_labels(path: str | Path) -> LabelTable:
    """Read a label CSV in either supported form."""
    path = Path(path)
    if not path.is_file():
        raise DataError("label file does not exist; pass the CSV written by `radar synth` "
                        "or a LogHub anomaly_label.csv", file=str(path))
    table = LabelTable(source=str(path))
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or []}
        if set(LABEL_HEADER) <= columns.keys():
            for line, row in enumerate(reader, start=2):
                try:
                    sid = int(row[columns["session_id"]])
                except ValueError:
                    raise DataError(f"session_id {row[columns['session_id']]!r} is not an "
                                    "integer", file=str(path), index=line) from None
                label = _parse_label(row[columns["label"]], path, line)
                if label is None:
                    table.unreviewed += 1
                    continue
                table.by_file_session[(Path(row[columns["file"]]).name, sid)] = label
        elif {"blockid", "label"} <= columns.keys():
            for line, row in enumerate(reader, start=2):
                label = _parse_label(row[columns["label"]], path, line)
                if label is None:
                    table.unreviewed += 1
                    continue
                table.by_key[row[columns["blockid"]]] = label
        else:
            raise DataError("unrecognised label header; expected 'file,session_id,label' or "
                            f"'BlockId,Label', found {reader.fieldnames}", file=str(path))
    return table
