"""Text inputs people hand to RADAR (label CSVs, key-sequence files, JSON Lines exports).

They come from spreadsheets and other tools: UTF-8 with or without a byte-order mark,
``\\n`` or ``\\r\\n`` line ends. All of that just works here; a file that is not UTF-8
text at all (a binary file, a UTF-16 export) gives one :class:`DataError` naming the
file, the line and the fix, instead of a ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from radar.errors import DataError


def text_lines(path: Path, what: str) -> Iterator[str]:
    """The lines of a UTF-8 text file (BOM dropped, line ends kept, as ``csv`` wants them).

    ``what`` names the file for people ("the label file").
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                if "\0" in line:
                    raise _not_text(path, what, number, "it holds NUL bytes")
                yield line
    except UnicodeDecodeError:
        line, byte = _first_bad_line(path)
        raise _not_text(path, what, line, f"byte {byte:#04x} is not UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc.strerror or exc}", file=str(path)) from None


def _first_bad_line(path: Path) -> tuple[int, int]:
    """(line number, first offending byte) of the first line that is not UTF-8 (the text
    decoder reads ahead in blocks, so its own position says nothing about lines)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, raw[exc.start]
    return 1, 0


def _not_text(path: Path, what: str, line: int, reason: str) -> DataError:
    return DataError(f"{what} is not UTF-8 text ({reason}); save it as UTF-8 "
                     "text (a spreadsheet's 'CSV UTF-8')", file=str(path), index=line)
