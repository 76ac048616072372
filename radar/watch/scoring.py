"""The one place ``radar watch`` touches the scoring code: load a run, score closed sessions.

This calls exactly what ``radar serve`` calls to score an in-memory batch
(:func:`radar.serve.scoring.load_serving_model` and
:meth:`~radar.serve.scoring.ServingModel.score`: the run's
:class:`~radar.runner.RunScorer`, one detector or the ensemble, plus the source links
``radar detect`` adds when the run has a source index), so a watched session gets the
very record ``radar detect`` writes for it. A change of that API is a change here only.
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
    closed_by: str                  # see docs/watch.md: end_marker, idle, wall_idle, ...


def run_data_dir(run_dir: str | Path) -> str | None:
    """The data folder the run trained on (``data.preprocessed_dir`` of its config.yaml);
    a RadarError naming the fix when ``run_dir`` is no run folder."""
    from radar.rundir import RunDir

    return ((RunDir.open(run_dir).config() or {}).get("data") or {}).get("preprocessed_dir")


def load_scorer(run_dir: str | Path, device_name: str = "cpu") -> Any:
    """The run's detector or ensemble, loaded once (RadarError naming the fix)."""
    from radar.device import resolve_device
    from radar.serve.scoring import load_serving_model

    scorer = load_serving_model(run_dir, resolve_device(device_name))
    # one tiny pass, so the first real micro-batch does not pay for lazy set-up
    score_sessions(scorer, [ClosedSession(0, "warm-up", [0], "unknown", False, False,
                                          0.0, 0.0, "warm_up")])
    return scorer


def score_sessions(scorer: Any, sessions: list[ClosedSession]) -> list[dict[str, Any]]:
    """One record per session, in order: what ``radar detect`` writes for it."""
    if not sessions:
        return []
    (records,) = scorer.score([sessions])
    return records
