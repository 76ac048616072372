"""Exceptions meant for people: each carries a message naming what went wrong and the fix.

The CLI turns any :class:`RadarError` into a one-line red message and a non-zero
exit code instead of a traceback.
"""

from __future__ import annotations


class RadarError(Exception):
    """Base class for errors that are shown to the user as plain messages."""

    exit_code = 1


class ConfigError(RadarError):
    """A configuration file or ``--set`` override is invalid."""

    exit_code = 2


class UnknownNameError(RadarError):
    """A detector, scorer or other registered name does not exist."""

    exit_code = 2

    def __init__(self, kind: str, name: str, available: list[str]):
        self.kind, self.name, self.available = kind, name, sorted(available)
        listing = ", ".join(self.available) or "none installed"
        super().__init__(f"unknown {kind} {name!r}; available: {listing}")


class OutputError(RadarError):
    """An output would replace an input, a run's own file, or another dataset's files."""

    exit_code = 2


class DataError(RadarError):
    """Input data is unreadable or a record is invalid (in strict mode)."""

    def __init__(self, message: str, *, file: str | None = None, offset: int | None = None,
                 index: int | None = None):
        self.file, self.offset, self.index = file, offset, index
        where = []
        if file is not None:
            where.append(str(file))
        if index is not None:
            where.append(f"record {index}")
        if offset is not None:
            where.append(f"byte {offset}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
