"""Line formats: a regex with named groups per raw log line, presets for LogHub's formats.

A format names its fields with groups: ``content`` (the message Drain parses) is
required; the time comes from ``timestamp`` (ISO-like ``2005-06-03-15.42.50.675872``,
``2024-05-01T12:00:00,123`` or unix seconds/milliseconds) or from ``date`` plus an
optional ``time`` (``081109`` + ``203615``, ``2024-05-01`` + ``12:00:00.5``).
Optional groups: ``level`` (gives has_error / has_warn), ``label`` (ground truth,
only ever written to labels.csv), ``service`` (service_name). Times are the log's own
wall clock; a trailing zone offset is ignored, so a day is the day the log printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from radar.errors import RadarError

ERROR_LEVELS = frozenset({"ERROR", "ERR", "FATAL", "SEVERE", "FAILURE", "CRITICAL", "CRIT",
                          "ALERT", "EMERG", "EMERGENCY", "PANIC"})
WARN_LEVELS = frozenset({"WARN", "WARNING"})
# Values of a ``label`` group that mean "normal"; anything else is an alert.
NORMAL_LABELS = frozenset({"-", "", "0", "normal", "false", "no"})

_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"
# Drain3 masking (pattern, mask name), applied in order before template mining.
DEFAULT_MASKING = (
    (r"blk_-?\d+", "BLK"),
    (_B + r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?" + _E, "IP"),
    (_B + r"0x[0-9a-fA-F]+" + _E, "HEX"),
    (_B + r"[-+]?\d+(?:\.\d+)?" + _E, "NUM"),
)


@dataclasses.dataclass(frozen=True)
class LineFormat:
    """How to read one line, and the preset's defaults for everything else."""

    name: str
    pattern: str
    group_by: str = "window"            # key | window | sliding
    key_regex: str | None = None
    window: int = 300
    step: int | None = None
    sim_th: float = 0.4
    depth: int = 4

    @property
    def regex(self) -> re.Pattern:
        return _compiled(self.pattern)

    @property
    def groups(self) -> frozenset[str]:
        return frozenset(self.regex.groupindex)


PRESETS = {
    # 081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block ...
    # LogHub's Drain settings for HDFS (similarity 0.5, depth 4); one session per block.
    "hdfs": LineFormat(
        "hdfs", r"(?P<date>\d{6}) (?P<time>\d{6}) (?P<pid>\d+) (?P<level>[A-Z]+) "
                r"(?P<component>\S+): (?P<content>.*)",
        group_by="key", key_regex=r"blk_-?\d+", sim_th=0.5, depth=4),
    # - 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872
    #   R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected
    # Fixed 5-minute windows: LogBERT's BGL window length, without its 1-minute overlap.
    "bgl": LineFormat(
        "bgl", r"(?P<label>\S+) (?P<epoch>\d+) (?P<date>\d{4}\.\d{2}\.\d{2}) (?P<node>\S+) "
               r"(?P<timestamp>\S+) (?P<node_repeat>\S+) (?P<type>\S+) (?P<component>\S+) "
               r"(?P<level>[A-Z]+) (?P<content>.*)",
        group_by="window", window=300, sim_th=0.5, depth=5),
    # 2024-05-01 12:00:00,123 [main] ERROR db.pool - connection refused
    "generic": LineFormat(
        "generic", r"(?P<timestamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
                   r"(?:Z|[+-]\d{2}:?\d{2})?)\s+(?:\[(?P<thread>[^\]]*)\]\s+)?"
                   r"(?:(?P<level>(?i:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|"
                   r"CRITICAL|CRIT|FATAL|SEVERE|ALERT|EMERG))\b:?\s*)?(?P<content>.*)",
        group_by="window", window=300),
}


_cache: dict[str, re.Pattern] = {}


def _compiled(pattern: str) -> re.Pattern:
    if pattern not in _cache:
        _cache[pattern] = re.compile(pattern)
    return _cache[pattern]


def compile_regex(pattern: str, option: str) -> re.Pattern:
    """``re.compile`` with a RadarError naming the option on a bad pattern."""
    try:
        return _compiled(pattern)
    except re.error as exc:
        raise RadarError(f"{option} is not a valid regular expression ({exc}): "
                         f"{pattern!r}") from None


def custom_format(base: LineFormat, pattern: str) -> LineFormat:
    """``base`` with its line regex replaced by ``pattern`` (checked for the needed groups)."""
    groups = set(compile_regex(pattern, "--format").groupindex)
    if "content" not in groups:
        raise RadarError("--format needs a named group (?P<content>...) for the message "
                         f"Drain parses; found groups: {sorted(groups) or 'none'}")
    if not groups & {"timestamp", "date", "epoch"}:
        raise RadarError("--format needs the time: a named group (?P<timestamp>...), "
                         "(?P<date>...) with an optional (?P<time>...), or (?P<epoch>...)")
    return dataclasses.replace(base, pattern=pattern)


# ---------------------------------------------------------------- timestamps

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_TIME = re.compile(r"(\d{1,2})[:.](\d{2})(?:[:.](\d{2})(?:[.,](\d+))?)?")
_SPLIT = re.compile(r"(\d{4}[-/.]\d{1,2}[-/.]\d{1,2})(?:[T\s_-]+(.*))?")


class TimeParser:
    """Turns a line's match into (seconds, ``YYYY-MM-DD``); ValueError when it cannot."""

    def __init__(self, groups):
        self._days: dict[str, tuple[int, str]] = {}
        if "timestamp" in groups:
            self._mode = "timestamp"
        elif "date" in groups:
            self._mode = "date"
        elif "epoch" in groups:
            self._mode = "epoch"
        else:
            raise RadarError("the line format has no timestamp, date or epoch group")
        self._has_time = "time" in groups
        self._last: tuple = (None, None)      # lines in the same second share a result

    def __call__(self, match: re.Match) -> tuple[float, str]:
        if self._mode == "timestamp":
            text = match["timestamp"]
            if text != self._last[0]:
                self._last = (text, self._timestamp(text))
            return self._last[1]
        if self._mode == "epoch":
            return _epoch(match["epoch"])
        text = (match["date"], match["time"] if self._has_time else None)
        if text != self._last[0]:
            base, day = self._day(text[0])
            self._last = (text, (base + (_seconds_of_day(text[1]) if text[1] else 0.0), day))
        return self._last[1]

    def _timestamp(self, text: str) -> tuple[float, str]:
        if text.isdigit():
            return _epoch(text)
        found = _SPLIT.match(text)
        if found is None:
            raise ValueError(f"unreadable timestamp {text!r}")
        base, day = self._day(found[1])
        rest = found[2]
        return base + (_seconds_of_day(rest) if rest else 0.0), day

    def _day(self, text: str) -> tuple[int, str]:
        known = self._days.get(text)
        if known is None:
            date = _parse_date(text)
            known = ((date.toordinal() - _EPOCH_ORDINAL) * 86400, date.isoformat())
            if len(self._days) > 10_000:
                self._days.clear()
            self._days[text] = known
        return known


def _parse_date(text: str) -> dt.date:
    if text.isdigit() and len(text) in (6, 8):      # yymmdd (HDFS) or yyyymmdd
        year = 2000 + int(text[:2]) if len(text) == 6 else int(text[:4])
        return dt.date(year, int(text[-4:-2]), int(text[-2:]))
    found = _DATE.fullmatch(text)
    if found is None:
        raise ValueError(f"unreadable date {text!r}")
    return dt.date(*(int(part) for part in found.groups()))


def _seconds_of_day(text: str) -> float:
    if text[:6].isdigit() and (len(text) == 6 or not text[6:7].isdigit()):   # hhmmss
        hours, minutes, seconds, fraction = text[:2], text[2:4], text[4:6], None
    else:
        found = _TIME.match(text)
        if found is None:
            raise ValueError(f"unreadable time {text!r}")
        hours, minutes, seconds, fraction = found.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    if total > 86400:               # 23:59:60 (a leap second) is allowed
        raise ValueError(f"time {text!r} is past the end of the day")
    return total + (float("0." + fraction) if fraction else 0.0)


def _epoch(text: str) -> tuple[float, str]:
    seconds = float(text)
    if len(text.split(".")[0]) >= 12:       # milliseconds since 1970
        seconds /= 1000.0
    day = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).date()
    return seconds, day.isoformat()
