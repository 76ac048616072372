"""Train/validation split of the day files, written as ``train_files.txt`` / ``val_files.txt``.

Splitting by date (the default) validates on the latest days, which is how the model
will be used: trained on the past, run on new days. ``method="random"`` is the user's
shuffled 90/10 split.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from radar.data.files import require_days, sort_by_day
from radar.errors import ConfigError, DataError
from radar.fsutil import atomic_write_text
from radar.rundir import TRAIN_LIST, VAL_LIST

METHODS = ("date", "random")


def split_files(files: list[str | os.PathLike], *, val_fraction: float = 0.1,
                method: str = "date", seed: int = 42, limit_files: int = 0
                ) -> tuple[list[Path], list[Path]]:
    """Split day files into (train, val), each in date order.

    ``limit_files`` N keeps only the N most recent days first. At least one file goes
    to validation and at least one to training.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown split method {method!r}; available: {', '.join(METHODS)}")
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    if limit_files < 0:
        raise ConfigError(f"limit_files must be 0 (all) or positive, got {limit_files}")
    ordered = sort_by_day([Path(f) for f in files])
    if method == "date" or limit_files:
        require_days(ordered, "splitting by date" if method == "date" else
                     "--limit-files keeps the most recent days")
    if limit_files:
        ordered = ordered[-limit_files:]
    if len(ordered) < 2:
        hint = " or raise --limit-files" if limit_files else ""
        raise DataError(f"need at least 2 day files to split into train and validation, "
                        f"got {len(ordered)}; point at a folder with more days{hint}")
    n_val = min(len(ordered) - 1, max(1, round(len(ordered) * val_fraction)))
    if method == "date":
        return ordered[:-n_val], ordered[-n_val:]
    shuffled = list(ordered)
    random.Random(seed).shuffle(shuffled)
    return sort_by_day(shuffled[n_val:]), sort_by_day(shuffled[:n_val])


def write_split(train: list[Path], val: list[Path], out_dir: str | os.PathLike
                ) -> tuple[Path, Path]:
    """Write the two lists (absolute paths, one per line); return their paths."""
    out = Path(out_dir)
    paths = out / TRAIN_LIST, out / VAL_LIST
    for path, files in zip(paths, (train, val)):
        atomic_write_text(path, "".join(f"{Path(f).resolve()}\n" for f in files))
    return paths


def read_file_list(path: str | os.PathLike) -> list[Path]:
    """Read a file list; blank lines and ``#`` comments are skipped.

    Relative entries are taken relative to the working directory, or failing that to the
    list's own folder. Every listed file must exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file list {path} does not exist; write one with `radar split`")
    files, missing = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        candidate = Path(entry).expanduser()
        if not candidate.is_absolute() and not candidate.exists():
            candidate = path.parent / candidate
        (files if candidate.is_file() else missing).append(candidate)
    if missing:
        shown = ", ".join(str(m) for m in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataError(f"{len(missing)} file(s) listed in {path} do not exist: {shown}{more}; "
                        f"fix the paths or rerun `radar split`")
    if not files:
        raise DataError(f"file list {path} is empty; rerun `radar split`")
    return files
