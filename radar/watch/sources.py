"""Where watched lines come from: files followed like ``tail -F``, or standard input.

A followed file is read from its start (or from its checkpointed offset) and then
polled: appended lines are read as they come; when the name points to a new file
(rotation) the old one is read to its end first and the new one from its start;
when the file shrinks below what was read (truncation, ``copytruncate``) it is read
again from the start; a file that does not exist yet is waited for. A line counts
once its ``\\n`` has arrived (at end of input a final unterminated line counts too),
so the checkpointed offset always sits on a line boundary. Lines are decoded as
``radar ingest`` decodes them: UTF-8 with U+FFFD for bad bytes, blank lines skipped.

Standard input cannot be rewound: after a restart, watching goes on with whatever the
pipe delivers next.
"""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

from radar.errors import RadarError

READ_CHUNK = 1 << 16
Line = tuple[str, int, str]         # (source name, line number in it, text)


def split_lines(data: bytes, name: str, first_number: int) -> tuple[list[Line], bytes]:
    """Complete lines of ``data`` (numbered from ``first_number``) and the unfinished rest."""
    *complete, rest = data.split(b"\n")
    lines = []
    for offset, raw in enumerate(complete):
        text = raw.rstrip(b"\r").decode("utf-8", "replace")
        if text.strip():
            lines.append((name, first_number + offset, text))
    return lines, rest


class FollowedFile:
    """One file followed by name (see the module docstring)."""

    def __init__(self, path: Path, *, once: bool = False):
        self.path, self.once, self.name = Path(path), once, str(path)
        self.handle = None
        self.identity: tuple[int, int] | None = None    # (st_dev, st_ino) of the open file
        self.read_offset = 0
        self.partial = b""
        self.number = 0
        self.rotations = self.truncations = 0
        self.exhausted = False

    @property
    def offset(self) -> int:
        """Bytes of the open file consumed as whole lines."""
        return self.read_offset - len(self.partial)

    def position(self) -> dict:
        dev, ino = self.identity or (None, None)
        return {"path": str(self.path.absolute()), "dev": dev, "ino": ino,
                "offset": self.offset}

    def restore(self, position: dict) -> str | None:
        """Reopen where a checkpoint left off; a note when that was not possible."""
        saved = (position["dev"], position["ino"])
        if position["ino"] is None:
            return None
        found = _file_with_identity(self.path, saved)
        if found is None:
            return (f"{self.path}: the file read before the restart is gone; reading "
                    f"{self.path} from its start")
        self._open(found, int(position["offset"]))
        return None

    def lag_bytes(self) -> int:
        try:
            size = self.path.stat().st_size if self.handle is None else os.fstat(
                self.handle.fileno()).st_size
        except OSError:
            return 0
        return max(size - self.offset, 0)

    def read(self) -> list[Line] | None:
        """The whole lines that arrived since the last call; None when nothing did."""
        if self.handle is None and not self._open_by_name():
            self.exhausted = self.once
            return None
        data = self.handle.read(READ_CHUNK)
        if data:
            self.read_offset += len(data)
            return self._lines(self.partial + data)
        return self._at_end()

    def _lines(self, data: bytes) -> list[Line]:
        lines, self.partial = split_lines(data, self.name, self.number + 1)
        self.number += data.count(b"\n")
        return lines

    def _at_end(self) -> list[Line] | None:
        """End of what is there: rotated, truncated, finished (--once) or just waiting."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            stat = None
        if stat is not None and (stat.st_dev, stat.st_ino) != self.identity:
            tail = self._flush_partial()
            self.rotations += 1
            self.close()
            self._open_by_name()
            return tail
        if stat is not None and stat.st_size < self.read_offset:
            self.truncations += 1
            self.handle.seek(0)
            self.read_offset, self.partial, self.number = 0, b"", 0
            return []
        if self.once:
            self.exhausted = True
            return self._flush_partial()
        return None

    def _flush_partial(self) -> list[Line]:
        """A last line without its newline, at the end of a file that will not grow."""
        return self._lines(self.partial + b"\n") if self.partial else []

    def _open_by_name(self) -> bool:
        try:
            self._open(self.path, 0)
        except FileNotFoundError:
            return False
        return True

    def _open(self, path: Path, offset: int) -> None:
        try:
            handle = path.open("rb")
        except PermissionError:
            raise RadarError(f"{path} is not readable (permission denied); fix its "
                             "permissions or run as a user who can read it") from None
        except IsADirectoryError:
            raise RadarError(f"--follow {path} is a folder; follow the log files in it"
                             ) from None
        stat = os.fstat(handle.fileno())
        if stat.st_size < offset:           # truncated while we were away
            offset = 0
            self.truncations += 1
        handle.seek(offset)
        self.handle, self.identity = handle, (stat.st_dev, stat.st_ino)
        self.read_offset, self.partial, self.number = offset, b"", 0

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _file_with_identity(path: Path, identity: tuple) -> Path | None:
    """``path`` if it is still that file, else a file in its folder that is (rotated)."""
    candidates = [path]
    try:
        candidates += sorted(p for p in path.parent.iterdir() if p != path)
    except OSError:
        pass
    for candidate in candidates:
        try:
            stat = candidate.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) == identity and candidate.is_file():
            return candidate
    return None


class StdinSource:
    """Standard input (a pipe from kubectl logs -f, Fluent Bit, Vector, or a file)."""

    name = "<stdin>"

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdin.buffer
        try:
            self.fd = self.stream.fileno()
        except (OSError, ValueError):       # an in-memory stream: plain blocking reads
            self.fd = None
        self.partial = b""
        self.number = 0
        self.exhausted = False

    def read(self, timeout: float) -> list[Line]:
        if self.fd is None:
            data = self.stream.read1(READ_CHUNK)
        else:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return []
            data = os.read(self.fd, READ_CHUNK)
        if not data:
            self.exhausted = True
            tail = self.partial + b"\n" if self.partial else b""
            self.partial = b""
            return split_lines(tail, self.name, self.number + 1)[0]
        lines, self.partial = split_lines(self.partial + data, self.name, self.number + 1)
        self.number += data.count(b"\n")
        return lines


class LineSources:
    """Every source of one watch: ``read_batch`` returns what arrived, waiting a little."""

    def __init__(self, files: list[Path], stdin: StdinSource | None, *, poll_s: float = 0.2):
        self.files, self.stdin, self.poll_s = [FollowedFile(p) for p in files], stdin, poll_s

    def set_once(self) -> None:
        for followed in self.files:
            followed.once = True

    @property
    def exhausted(self) -> bool:
        if self.stdin is not None:
            return self.stdin.exhausted
        return all(followed.exhausted for followed in self.files)

    def read_batch(self, max_lines: int = 8192, timeout: float | None = None) -> list[Line]:
        timeout = self.poll_s if timeout is None else timeout
        if self.stdin is not None:
            return self.stdin.read(timeout)
        lines: list[Line] = []
        for followed in self.files:
            while len(lines) < max_lines and not followed.exhausted:
                got = followed.read()
                if got is None:
                    break
                lines.extend(got)
        if not lines and not self.exhausted:
            time.sleep(timeout)
        return lines

    def positions(self) -> list[dict]:
        return [followed.position() for followed in self.files]

    def restore(self, positions: list[dict]) -> list[str]:
        notes = []
        by_path = {position["path"]: position for position in positions}
        for followed in self.files:
            saved = by_path.get(str(followed.path.absolute()))
            if saved is not None:
                note = followed.restore(saved)
                if note:
                    notes.append(note)
        return notes

    def lag_bytes(self) -> int:
        return sum(followed.lag_bytes() for followed in self.files)

    def close(self) -> None:
        for followed in self.files:
            followed.close()

