"""The built-in demo: generated day files with ground truth, for `radar run` with no data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

DEMO_DAYS, DEMO_SESSIONS, DEMO_SEED = 4, 2000, 20260224


def ensure_demo_data(config, log: Callable[[str], None]) -> Path:
    """Generate the demo day files (and labels.csv) unless they are already there."""
    from radar.data.synth import generate

    data_dir = Path(config.data.preprocessed_dir)
    labels = data_dir / "labels.csv"
    if not (labels.is_file() and list(data_dir.glob(config.data.file_pattern))):
        log(f"generating demo data in {data_dir} ({DEMO_DAYS} days x {DEMO_SESSIONS} sessions)")
        generate(data_dir, days=DEMO_DAYS, sessions=DEMO_SESSIONS, anomaly_rate=0.05,
                 seed=DEMO_SEED)
    return labels
