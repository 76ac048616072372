"""The one place ``radar watch`` touches the scoring code: load a run, score closed sessions.

This calls the in-memory scoring ``radar serve`` calls too
(:meth:`~radar.scoring.run.RunScorer.score_sessions`: the run's detector or ensemble,
plus the source links ``radar detect`` adds when the run has a source index), so a
watched session gets the very record ``radar detect`` writes for it. A change of that
API is a change here only.
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


@dataclass
class WatchScorer:
    """A run's scorer, loaded once, and its source linker (None without an index)."""

    scorer: Any                      # radar.scoring.run.RunScorer
    linker: Any = None


def load_scorer(run_dir: str | Path, device_name: str = "cpu") -> WatchScorer:
    """The run's detector or ensemble, loaded once (RadarError naming the fix)."""
    from radar.device import resolve_device
    from radar.scoring.run import RunScorer
    from radar.source.annotate import run_linker

    run = RunScorer.from_run(run_dir, resolve_device(device_name))
    scorer = WatchScorer(run, run_linker(run.config))
    # one tiny pass, so the first real micro-batch does not pay for lazy set-up
    score_sessions(scorer, [ClosedSession(0, "warm-up", [0], "unknown", False, False,
                                          0.0, 0.0, "warm_up")])
    return scorer


def score_sessions(scorer: WatchScorer, sessions: list[ClosedSession]) -> list[dict[str, Any]]:
    """One record per session, in order: what ``radar detect`` writes for it."""
    if not sessions:
        return []
    records = scorer.scorer.score_sessions(sessions)
    if scorer.linker is not None:
        from radar.source.annotate import annotate_explanations

        records = annotate_explanations(records, scorer.linker)
    return records
