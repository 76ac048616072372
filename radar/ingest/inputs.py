"""Reading raw log files: plain or gzip, line by line, with byte progress and bad-line notes.

Lines are read as bytes and decoded one at a time (invalid UTF-8 becomes U+FFFD), so
only ``\\n`` ends a line and a stray ``\\r`` inside one does not split it. Memory is one
line plus the read buffer, whatever the file size.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from radar.errors import RadarError

MAX_BAD_EXAMPLES = 5
_SNIPPET = 200


@dataclasses.dataclass
class BadLine:
    """A line that could not be read: where it is, why, and its start."""

    file: str
    line: int
    reason: str
    text: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text!r}"


class DamagedInput(RadarError):
    """A file that cannot be read to its end (a truncated .gz); its earlier lines count."""

    def __init__(self, path: Path, line: int, offset: int, reason: str):
        self.path, self.line, self.offset = path, line, offset
        super().__init__(f"{path}: unreadable after line {line - 1} (byte {offset}: {reason})")


def check_inputs(paths: list[Path]) -> None:
    """Every input must be a readable file (named in the error when it is not)."""
    if not paths:
        raise RadarError("no log files given; pass one or more raw log files (plain or .gz)")
    for path in paths:
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise RadarError(f"{path} {what}; pass raw log files (plain or .gz)")
        if not os.access(path, os.R_OK):
            raise RadarError(f"{path} is not readable (permission denied); fix its "
                             "permissions or run as a user who can read it")


def iter_lines(path: Path, progress=None, every: int = 8192
               ) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for every non-blank line of ``path``.

    ``progress(bytes_read)`` is called every ``every`` lines with the bytes of the file
    (compressed bytes for .gz) read so far, and once at the end. A file damaged part
    way yields its readable lines, then raises :class:`DamagedInput`.
    """
    number = 0
    with path.open("rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if _is_gzip(raw) else raw
        try:
            for number, data in enumerate(stream, start=1):
                if progress is not None and number % every == 0:
                    progress(raw.tell())
                text = data.rstrip(b"\r\n").decode("utf-8", "replace")
                if text.strip():
                    yield number, text
        except (OSError, EOFError, zlib.error) as exc:   # a damaged or truncated .gz
            raise DamagedInput(path, number + 1, raw.tell(), str(exc) or type(exc).__name__
                               ) from None
        finally:
            if stream is not raw:
                stream.close()
        if progress is not None:
            progress(raw.tell())


def _is_gzip(raw) -> bool:
    magic = raw.read(2)
    raw.seek(0)
    return magic == b"\x1f\x8b"


def snippet(text: str) -> str:
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
