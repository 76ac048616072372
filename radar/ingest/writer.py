"""Day files out of closed sessions: one streaming JSON array per day, written atomically.

A session belongs to the day of its first line and gets the next ``session_id`` of
that day's file. Each day file is written into a temporary file as sessions arrive
and renamed into place only when the whole ingest succeeds, so a failed run leaves
the folder as it was. A day file already in the folder is replaced, or with
``append`` kept and continued (its sessions first, ids carrying on after its largest).
With a ``label`` group in the format, ``labels.csv`` (``file,session_id,label``, the
form :func:`radar.data.labels.read_labels` reads) gets one row per session. Day files
and labels go through the writers in :mod:`radar.data.files` and :mod:`radar.data.labels`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from radar.data.files import DayFileWriter, day_file_name
from radar.data.labels import (
    LABELS_NAME,
    check_labels_header,
    labels_text,
    rows_of_other_files,
)
from radar.data.records import REQUIRED_FIELDS, session_record
from radar.errors import RadarError
from radar.fsutil import atomic_write, atomic_write_text
from radar.ingest.grouping import Session

__all__ = ["LABELS_NAME", "DayWriter"]
_COPY_CHUNK = 1 << 20


class _Day:
    """One day file being written."""

    def __init__(self, path: Path, writer: DayFileWriter, next_id: int, appended: bool):
        self.path, self.writer = path, writer
        self.first_new_id = self.next_id = next_id
        self.appended = appended
        self.labels = bytearray()


class DayWriter:
    """Streams sessions into ``out_dir``; use as a context manager (commits on success)."""

    def __init__(self, out_dir: Path, *, service: str, append: bool = False,
                 with_labels: bool = False):
        self.out_dir, self.service, self.append = out_dir, service, append
        self.with_labels = with_labels
        self.days: dict[str, _Day] = {}
        self.replaced: list[Path] = []
        self._stack = contextlib.ExitStack()
        if with_labels:
            check_labels_header(out_dir / LABELS_NAME)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:        # every temporary file is removed, nothing replaced
            return self._stack.__exit__(exc_type, exc, tb)
        for day in self.days.values():
            day.writer.close()
        self._stack.close()
        if self.with_labels:
            self._write_labels()
        return False

    @property
    def n_sessions(self) -> int:
        return sum(day.next_id - day.first_new_id for day in self.days.values())

    def write(self, session: Session) -> None:
        day = self.days.get(session.day) or self._open(session.day)
        record = session_record(day.next_id, session.events.tolist(),
                                service=session.service or self.service,
                                has_error=session.has_error, has_warn=session.has_warn,
                                original_logs=session.logs, session_key=session.key)
        day.writer.write(record)
        day.next_id += 1
        if self.with_labels:
            day.labels.append(session.alert)

    def _open(self, day_name: str) -> _Day:
        path = self.out_dir / day_file_name(day_name)
        handle = self._stack.enter_context(atomic_write(path, "wb"))
        next_id, appended, has_records = 0, False, False
        if path.exists():
            if self.append:
                next_id, has_records = _copy_open_array(path, handle)
                appended = True
            else:
                self.replaced.append(path)
        writer = DayFileWriter(handle, continues=appended, has_records=has_records)
        day = self.days[day_name] = _Day(path, writer, next_id, appended)
        return day

    def _write_labels(self) -> None:
        path = self.out_dir / LABELS_NAME
        rewritten = {day.path.name for day in self.days.values() if not day.appended}
        rows = rows_of_other_files(path, rewritten)
        for day in sorted(self.days.values(), key=lambda day: day.path.name):
            rows += [(day.path.name, day.first_new_id + i, label)
                     for i, label in enumerate(day.labels)]
        atomic_write_text(path, labels_text(rows))


def _copy_open_array(path: Path, handle) -> tuple[int, bool]:
    """Copy an existing day file without its closing ``]``.

    Returns the next session_id and whether the copied array already holds records.
    """
    from radar.data.reader import iter_sessions

    try:
        ids = [record["session_id"] for record in
               iter_sessions(path, fields=REQUIRED_FIELDS, with_offsets=False)]
    except RadarError as exc:
        raise RadarError(f"cannot append to {path}: {exc}; fix or move the file") from None
    data_end, has_records = _closing_bracket(path)
    with path.open("rb") as source:
        remaining = data_end
        while remaining > 0:
            chunk = source.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                break
            handle.write(chunk)
            remaining -= len(chunk)
    return (max(ids) + 1 if ids else 0), has_records


def _closing_bracket(path: Path) -> tuple[int, bool]:
    """The byte offset of the final ``]`` of a JSON array file, and whether the array
    holds anything (the last byte before that ``]`` is not its opening ``[``)."""
    with path.open("rb") as source:
        size = source.seek(0, 2)
        start = max(0, size - 4096)
        source.seek(start)
        body = source.read().rstrip()
    if not body.endswith(b"]"):
        raise RadarError(f"cannot append to {path}: it does not end with a JSON array's ']'; "
                         "fix or move the file")
    return start + len(body) - 1, not body[:-1].rstrip().endswith(b"[")
