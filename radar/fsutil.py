"""Atomic file writes: write a temporary file beside the target, fsync, rename.

A reader never sees a half-written file, and an interrupted write leaves the old
file (or nothing) in place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from radar.errors import OutputError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                 ) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync it and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())   # mkstemp makes 0600; match a normal open()
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file: by inode when both exist (symlinks and hard links
    too), else by their resolved names."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwrite(target: str | os.PathLike, protected: Iterable[tuple[str, Path]], *,
                     option: str = "--output") -> None:
    """Raise :class:`OutputError` (exit 2) when ``target`` is one of the ``protected``
    ``(what, path)`` files (an input, a run's own file), before anything is written."""
    for what, path in protected:
        if same_path(target, path):
            raise OutputError(f"{option} {target} is {what} ({path}); writing there would "
                              "replace it: choose another file")


def fsync_dir(directory: str | os.PathLike) -> None:
    """Persist a rename by fsyncing its directory (a no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
