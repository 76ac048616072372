"""The internal readers the triage page uses, imported here only: both are moving
(results reader -> ``radar/results.py``, raw lines -> ``radar/data/logs.py``), so a move
is a fix of this one file."""

try:
    from radar.results import iter_results
except ImportError:     # pragma: no cover - before the move
    from radar.report.results import iter_results

try:
    from radar.data.logs import original_logs
except ImportError:     # pragma: no cover - before the move
    from radar.report.logs import original_logs

__all__ = ["iter_results", "original_logs"]
