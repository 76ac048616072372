"""The one place ``radar watch`` touches the scoring code: load a run, score closed sessions.

Until the trained-run scorer lands, this calls exactly what ``radar serve`` calls to
score an in-memory batch (:func:`radar.serve.scoring.load_serving_model` and
:meth:`~radar.serve.scoring.ServingModel.score`: ``radar detect``'s single-detector
functions, or the saved ensemble), so a watched session gets the very record
``radar detect`` writes for it. Switching to the new scorer is a change here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ClosedSession:
    """A session the watcher closed, in the shape the scorer reads."""

    session_id: int                 # the watcher's sequence number (stable across restarts)
    session_key: str
    event_sequence: list[int]
    service_name: str
    has_error: bool
    has_warn: bool
    first_seen: float               # wall clock: its first line was read
    closed_at: float                # wall clock: it closed
    closed_by: str                  # end_marker, idle, wall_idle, cap, window, end_of_input


def run_config_path(run_dir: Path) -> Path:
    """The resolved config a run saved (``radar run``/``radar train`` write it)."""
    return Path(run_dir) / "config.yaml"


def load_scorer(run_dir: str | Path, device_name: str = "cpu") -> Any:
    """The run's detector or ensemble, loaded once (RadarError naming the fix)."""
    from radar.device import resolve_device
    from radar.serve.scoring import load_serving_model

    return load_serving_model(run_dir, resolve_device(device_name))


def scorer_threshold(scorer: Any) -> float:
    return float(scorer.threshold)


def score_sessions(scorer: Any, sessions: list[ClosedSession]) -> list[dict[str, Any]]:
    """One record per session, in order: what ``radar detect`` writes for it."""
    if not sessions:
        return []
    (records,) = scorer.score([sessions])
    return records
