"""The one rich console RADAR prints through (stderr for progress, stdout for results)."""

from rich.console import Console

console = Console(soft_wrap=True, log_path=False)
err_console = Console(stderr=True, soft_wrap=True, log_path=False)
