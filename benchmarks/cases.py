"""The data every quality benchmark uses, made once per work folder, and the CLI runner.

- demo: `radar synth` with seed 7 (not the built-in demo's), 4 days x 2000 sessions
- synth_data: any `radar synth` set (anomaly rate, seed, days, sessions, drift)
- HDFS_100k: ../shared/data/hdfs_100k converted to day files (None when absent)

Label-free runs (:func:`radar_labelfree_run`) never see a label file; the true metrics
come afterwards from `radar evaluate` (:func:`radar_evaluate`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HDFS_SOURCE = ROOT.parent / "shared" / "data" / "hdfs_100k" / "sessions.jsonl"


def radar(*args: str, log: Path | None = None) -> None:
    """Run the real CLI in a subprocess; its output is not shown (it goes to ``log``
    when given, stdout and stderr both, so a failed or odd run can be read later)."""
    if log is None:
        subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True,
                       stdout=subprocess.DEVNULL)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as handle:
        subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True,
                       stdout=handle, stderr=subprocess.STDOUT)


def radar_json(*args: str) -> dict:
    """Run a CLI command that prints one JSON object (``--json``); return the object."""
    done = subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def radar_evaluate(results: Path, labels: Path) -> dict:
    """`radar evaluate --json` of a results file against a label file."""
    return radar_json("evaluate", "--results", str(results), "--labels", str(labels), "--json")


def radar_demo_config(command: str, detectors, data: Path, labels: Path, run_dir: Path,
                      cache_dir: Path, settings=()) -> None:
    """`radar run` (or `train`) with configs/demo.yaml, ``detectors``, the data and its
    labels, into ``run_dir``; ``settings`` are further ``--set KEY=VALUE`` items."""
    radar(command, *[arg for name in detectors for arg in ("--detector", name)],
          "--config", str(ROOT / "configs" / "demo.yaml"), "--data", str(data),
          "--labels", str(labels), "--set", f"output_dir={run_dir}",
          "--set", f"data.cache_dir={cache_dir}",
          *[arg for item in settings for arg in ("--set", item)])


def radar_labelfree_run(detectors, data: Path, run_dir: Path, cache_dir: Path,
                        settings=()) -> None:
    """`radar run` with configs/demo.yaml (the demo model sizes) and NO label file: the
    data settings are the defaults (configs/demo.yaml trains on its labels, so its
    data.train_filter is put back to the default), output and log in ``run_dir``."""
    from radar.config import DataConfig

    radar("run", *[arg for name in detectors for arg in ("--detector", name)],
          "--config", str(ROOT / "configs" / "demo.yaml"), "--data", str(data),
          "--set", f"data.train_filter={DataConfig().train_filter}",
          "--set", f"output_dir={run_dir}", "--set", f"data.cache_dir={cache_dir}",
          *[arg for item in settings for arg in ("--set", item)],
          log=run_dir.parent / f"{run_dir.name}.log")


def synth_data(out: Path, *, days: int, sessions: int, anomaly_rate: float, seed: int,
               drift: float = 0.0, release: float = 0.0) -> Path:
    """`radar synth` day files (and labels.csv) in a folder of ``out`` named by the
    arguments, made once."""
    name = f"synth-d{days}-n{sessions}-r{anomaly_rate:g}-s{seed}"
    folder = out / (f"{name}-drift{drift:g}" if drift else name)
    if release:
        folder = folder.with_name(f"{folder.name}-release{release:g}")
    if not (folder / "labels.csv").is_file():
        radar("synth", str(folder), "--days", str(days), "--sessions", str(sessions),
              "--anomaly-rate", str(anomaly_rate), "--seed", str(seed), "--drift", str(drift),
              "--release", str(release))
    return folder


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
