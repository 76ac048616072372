"""The one rich console RADAR prints through (stderr for progress, stdout for results).

:func:`step_progress` is how every long step shows it is alive: a bar with an ETA on
an interactive terminal, a plain progress line now and then on a pipe or log file.

Text from data (file names, service names, session keys, raw log lines) is anyone's
input: :func:`printable` shows its control characters as escapes (``\\x1b``), so an
ANSI or OSC sequence in it never reaches the terminal, and :func:`data_text` also
escapes rich markup, for data put into a markup string or a table cell. Both consoles
pass every string they render through :func:`printable` as well.
"""

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# C0 controls but tab and newline (ESC starts ANSI/OSC sequences; CR and backspace
# overwrite what was printed), DEL, C1 controls (8-bit CSI and OSC), the line and
# paragraph separators and the bidirectional overrides (text that reads backwards).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: Any) -> str:
    """``text`` with every control character but tab and newline shown as its escape."""
    return _CONTROL.sub(_escaped, str(text))


def data_text(value: Any) -> str:
    """Text from data, ready for a markup string or a table cell: :func:`printable`, and
    rich markup (``[bold]``, ``[/]``) escaped so it prints as written."""
    return escape(printable(value))


class _Console(Console):
    """A rich console that renders every string through :func:`printable`; a string whose
    markup does not parse (data holding ``[/x]`` that missed :func:`data_text`) is shown
    as plain text rather than failing the command."""

    def render_str(self, text: str, **kwargs):
        text = printable(text)
        try:
            return super().render_str(text, **kwargs)
        except MarkupError:
            return super().render_str(text, **{**kwargs, "markup": False})


console = _Console(soft_wrap=True, log_path=False)
err_console = _Console(stderr=True, soft_wrap=True, log_path=False)

PLAIN_INTERVAL_S = 30.0      # between progress lines when stderr is not a terminal
_active: list[str] = []      # descriptions of the progress displays now open


@contextlib.contextmanager
def step_progress(total: int, description: str, *, completed: int = 0,
                  interval_s: float = PLAIN_INTERVAL_S) -> Iterator[Callable[[int], None]]:
    """Progress of ``total`` units on stderr; yields ``update(completed)``.

    On an interactive terminal a rich bar with elapsed time and ETA (log lines printed
    meanwhile appear above it); otherwise (a pipe, a log file, a background run) one
    line at the start, one with the ETA at the first update, then at most every
    ``interval_s`` seconds, and one at the end. ``completed`` is where a resumed job starts: the ETA counts only
    the rate since then. Inside another open progress display this one is silent (the
    outer one already shows the job), so callers need not know who draws.
    """
    if _active:
        yield lambda done: None
        return
    _active.append(description)
    try:
        if err_console.is_terminal:
            with _rich_bar(total, description, completed) as update:
                yield update
        else:
            line = _PlainProgress(total, description, completed, interval_s)
            line.start()
            yield line.update
            line.finish()
    finally:
        _active.pop()


@contextlib.contextmanager
def _rich_bar(total: int, description: str, completed: int):
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed)
        yield lambda done: progress.update(task, completed=done)


class _PlainProgress:
    """``description: 120/10000 (1.2%), 0:02:10 elapsed, eta 2:58:00`` lines on stderr."""

    def __init__(self, total: int, description: str, completed: int, interval_s: float):
        self.total, self.description, self.interval_s = total, description, interval_s
        self.start_units, self.done = completed, completed
        self.started = time.monotonic()
        self.printed_at: float | None = None
        self.printed_done: int | None = None

    def start(self) -> None:
        self._print(self.started)
        self.printed_at = None          # the first update prints too: the first ETA

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.printed_at is None or now - self.printed_at >= self.interval_s:
            self._print(now)

    def finish(self) -> None:
        if self.done != self.printed_done:     # the end, unless that was the last line
            self._print(time.monotonic())

    def _print(self, now: float) -> None:
        self.printed_at, self.printed_done = now, self.done
        elapsed = now - self.started
        share = f" ({self.done / self.total:.1%})" if self.total else ""
        err_console.print(f"{self.description}: {self.done}/{self.total}{share}, "
                          f"{_clock(elapsed)} elapsed, eta {self._eta(elapsed)}",
                          highlight=False)

    def _eta(self, elapsed: float) -> str:
        progressed = self.done - self.start_units
        if self.done >= self.total:
            return "0:00:00"
        if progressed <= 0 or elapsed <= 0:
            return "unknown"
        return _clock((self.total - self.done) * elapsed / progressed)


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))
