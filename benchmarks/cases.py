"""The data every quality benchmark uses, made once per work folder, and the CLI runner.

- demo: `radar synth` with seed 7 (not the built-in demo's), 4 days x 2000 sessions
- HDFS_100k: ../shared/data/hdfs_100k converted to day files (None when absent)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HDFS_SOURCE = ROOT.parent / "shared" / "data" / "hdfs_100k" / "sessions.jsonl"


def radar(*args: str) -> None:
    """Run the real CLI in a subprocess (its output is not shown)."""
    subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)


def radar_demo_config(command: str, detectors, data: Path, labels: Path, run_dir: Path,
                      cache_dir: Path, settings=()) -> None:
    """`radar run` (or `train`) with configs/demo.yaml, ``detectors``, the data and its
    labels, into ``run_dir``; ``settings`` are further ``--set KEY=VALUE`` items."""
    radar(command, *[arg for name in detectors for arg in ("--detector", name)],
          "--config", str(ROOT / "configs" / "demo.yaml"), "--data", str(data),
          "--labels", str(labels), "--set", f"output_dir={run_dir}",
          "--set", f"data.cache_dir={cache_dir}",
          *[arg for item in settings for arg in ("--set", item)])


def demo_data(out: Path) -> Path:
    """The fresh-seed demo day files (and labels.csv) in ``out/demo-data``."""
    demo = out / "demo-data"
    if not (demo / "labels.csv").is_file():
        radar("synth", str(demo), "--days", "4", "--sessions", "2000", "--seed", "7")
    return demo


def hdfs_data(out: Path) -> Path | None:
    """HDFS_100k as day files in ``out/hdfs-data``, or None without ../shared."""
    if not HDFS_SOURCE.is_file():
        return None
    from radar.data.convert import convert_hdfs_100k

    hdfs = out / "hdfs-data"
    if not (hdfs / "anomaly_label.csv").is_file():   # made once, so trained runs are reused
        convert_hdfs_100k(HDFS_SOURCE, hdfs)
    return hdfs
