"""Verdicts from the triage page: a label file in the run folder, merged under a lock.

``RUN_DIR/verdicts.csv`` is RADAR's label file (:mod:`radar.data.labels`)::

    file,session_id,label,verdict,who,when,group

``label`` is 1 (anomaly), 0 (normal) or blank (not sure: :func:`read_labels` counts it
as not yet reviewed), so ``radar run --labels RUN_DIR/verdicts.csv`` reads the file as
it is; ``verdict``, ``who`` (the name given on the page), ``when`` (UTC, ISO 8601) and
``group`` (the group key when the verdict was given to a whole group) are extra columns,
which label readers ignore. A ``radar review`` CSV (no verdict column) reads too.

Every change is read-merge-write under an exclusive ``fcntl.flock`` on
``RUN_DIR/.verdicts.lock``: two browsers giving verdicts at the same time each add to
what the other wrote (the later verdict on one session wins), never replace the file
with their own view. The file is written atomically (temporary file, fsync, rename),
so a crash or restart loses no verdict that was answered as saved.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from radar.data.labels import LABEL_HEADER, write_labels
from radar.data.textfiles import text_lines
from radar.errors import DataError

VERDICTS_NAME = "verdicts.csv"
LOCK_NAME = ".verdicts.lock"
EXTRA_COLUMNS = ("verdict", "who", "when", "group")
VERDICTS = {"anomaly": "1", "normal": "0", "unsure": ""}
MAX_WHO = 80


@dataclass
class Verdict:
    file: str
    session_id: int
    verdict: str            # anomaly | normal | unsure
    who: str = ""
    when: str = ""
    group: str = ""

    def row(self) -> tuple:
        return (self.file, self.session_id, VERDICTS[self.verdict], self.verdict, self.who,
                self.when, self.group)


def verdicts_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / VERDICTS_NAME


def _verdict_of(label: str, verdict: str, path: Path, line: int) -> str:
    verdict = verdict.strip().lower()
    if verdict in VERDICTS:
        return verdict
    label = label.strip().lower()
    if label in ("1", "anomaly", "abnormal", "true", "yes"):
        return "anomaly"
    if label in ("0", "normal", "false", "no"):
        return "normal"
    if not label:
        return "unsure"
    raise DataError(f"label {label!r} is neither 1/0 nor anomaly/normal; fix the row or "
                    "move the file away", file=str(path), index=line)


def read_verdicts(path: str | Path) -> dict[tuple[str, int], Verdict]:
    """The verdicts of a file, by (day file name, session_id); {} when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    reader = csv.reader(text_lines(path, "the verdict file"))
    header = [name.strip().lower() for name in next(reader, [])]
    if tuple(header[:3]) != LABEL_HEADER:
        raise DataError(f"not a label file (header {header}); expected "
                        f"'{','.join(LABEL_HEADER + EXTRA_COLUMNS)}': move it away and the "
                        "page starts a new one", file=str(path))
    column = {name: i for i, name in enumerate(header)}
    out: dict[tuple[str, int], Verdict] = {}
    for line, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        row = row + [""] * (len(header) - len(row))

        def cell(name: str, row=row) -> str:
            return row[column[name]] if name in column else ""
        try:
            session_id = int(row[1].strip())
        except ValueError:
            raise DataError(f"session_id {row[1]!r} is not an integer", file=str(path),
                            index=line) from None
        file_name = Path(row[0].strip()).name
        out[(file_name, session_id)] = Verdict(
            file_name, session_id, _verdict_of(row[2], cell("verdict"), path, line),
            cell("who"), cell("when"), cell("group"))
    return out


@contextlib.contextmanager
def locked(run_dir: str | Path) -> Iterator[None]:
    """An exclusive lock on the run's verdicts (across processes and threads)."""
    lock = Path(run_dir) / LOCK_NAME
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def clean_who(who: str | None) -> str:
    """The reviewer's name as stored: printable, one line, at most :data:`MAX_WHO` chars."""
    text = "".join(ch for ch in (who or "") if ch.isprintable()).strip()[:MAX_WHO]
    # A name starting like a formula would run in a spreadsheet opening the file.
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text


def record_verdicts(run_dir: str | Path, sessions: Iterable[tuple[str, int]], verdict: str,
                    *, who: str = "", group: str = "", when: str | None = None
                    ) -> dict[tuple[str, int], Verdict]:
    """Give ``verdict`` (anomaly, normal, unsure, or ``clear`` to take verdicts back) to
    ``sessions``; merged into the run's verdict file under its lock. Returns every
    verdict of the file after the change."""
    if verdict not in VERDICTS and verdict != "clear":
        raise ValueError(f"verdict {verdict!r}: one of anomaly, normal, unsure, clear")
    path = verdicts_path(run_dir)
    when = when or now()
    who = clean_who(who)
    with locked(run_dir):
        current = read_verdicts(path)
        for file_name, session_id in sessions:
            key = (Path(file_name).name, int(session_id))
            if verdict == "clear":
                current.pop(key, None)
            else:
                current[key] = Verdict(key[0], key[1], verdict, who, when, group)
        rows = [item.row() for _, item in sorted(current.items())]
        write_labels(path, rows, EXTRA_COLUMNS)
    return current


def effect(run_dir: str | Path, verdicts: dict[tuple[str, int], Verdict],
           flagged: dict[tuple[str, int], bool]) -> dict:
    """What the verdicts would change: confirmed anomalies and false alarms among the
    flagged sessions, anomalies the run missed, and the command that uses them.

    ``flagged``: whether the run flagged each judged session (absent: not in its results).
    """
    counts = {"confirmed": 0, "false_alarms": 0, "missed": 0, "normal_agreed": 0,
              "unsure": 0, "unknown": 0}
    for key, item in verdicts.items():
        was = flagged.get(key)
        if item.verdict == "unsure":
            counts["unsure"] += 1
        elif was is None:
            counts["unknown"] += 1
        elif item.verdict == "anomaly":
            counts["confirmed" if was else "missed"] += 1
        else:
            counts["false_alarms" if was else "normal_agreed"] += 1
    judged = counts["confirmed"] + counts["false_alarms"]
    run_dir = Path(run_dir)
    path = verdicts_path(run_dir)
    command = (f"radar run --config {run_dir / 'config.yaml'} --labels {path} "
               "--set detection.threshold_method=best_f1 "
               f"--set output_dir={run_dir.with_name(run_dir.name + '-verdicts')}")
    return {
        "total": len(verdicts), **counts,
        "precision_of_judged": counts["confirmed"] / judged if judged else None,
        "file": str(path), "command": command,
        "note": ("The next run reads these verdicts where their sessions' days are training "
                 "days: sessions marked anomaly stay out of training (data.train_filter="
                 "labels) and, on the held-out newest training day, best_f1 places the "
                 "threshold between the confirmed anomalies and the false alarms. This run "
                 "reported on those days, so run it once newer days are in the data folder "
                 "(add --data DIR when they are elsewhere)."),
    }
