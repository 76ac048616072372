"""The one rich console RADAR prints through (stderr for progress, stdout for results)."""

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(soft_wrap=True, log_path=False)
err_console = Console(stderr=True, soft_wrap=True, log_path=False)


@contextlib.contextmanager
def step_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on an interactive terminal; yields ``update(completed)``.

    Log lines printed through :data:`console` meanwhile appear above the bar. On a
    pipe or log file (a background run) there is no bar, only the log lines.
    """
    if not console.is_terminal:
        yield lambda completed: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda completed: progress.update(task, completed=completed)
