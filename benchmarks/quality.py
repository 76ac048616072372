"""Detection quality of `radar run` on demo data (a fresh seed) and on real HDFS_100k.

Each case runs the real CLI in a subprocess and reads the run's summary.json:

    python benchmarks/quality.py --workdir /tmp/radar-quality

Cases:
  demo-labels    demo generator, seed 7 (not the built-in demo's), training and
                 calibration on sessions labelled normal (the demo config)
  demo-has-error same data, training on has_error == false (the stage configs' default;
                 silent anomalies then sit in the training and calibration data)
  hdfs_100k      ../shared/data/hdfs_100k: train on normal sessions of its train split,
                 threshold from a held-out 10% of them, report on its test split
For each case both LogBERT scores are run: max_excess_nll (default) and max_nll.
HDFS_100k also prints the recall ceiling: test anomalies whose event sequence is
identical to a normal training session cannot be told apart by any sequence model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def radar(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "radar.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)


def run_case(name: str, data: Path, labels: Path, out: Path, extra: list[str]) -> list[dict]:
    rows = []
    for score in ("max_excess_nll", "max_nll"):
        run_dir = out / f"{name}-{score}"
        start = time.perf_counter()
        radar("run", "--detector", "logbert", "--config", str(ROOT / "configs" / "demo.yaml"),
              "--data", str(data), "--labels", str(labels),
              "--set", f"output_dir={run_dir}", "--set", f"data.cache_dir={out / 'cache'}",
              "--set", f"model.score={score}",
              *[arg for e in extra for arg in ("--set", e)])
        seconds = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        m = summary["metrics"]
        rows.append({"case": name, "score": score, "precision": m["precision"],
                     "recall": m["recall"], "f1": m["f1"], "roc_auc": m["roc_auc"],
                     "sessions": summary["sessions"], "anomalous": m["n_anomalous"],
                     "seconds": seconds})
    return rows


def hdfs_ceiling(source: Path) -> str:
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    normal = {tuple(r["events"]) for r in rows if r["split"] == "train" and r["label"] == 0}
    anomalies = [r for r in rows if r["split"] == "test" and r["label"] == 1]
    same = sum(tuple(r["events"]) in normal for r in anomalies)
    recall = 1 - same / len(anomalies)
    return (f"HDFS_100k: {same} of {len(anomalies)} test anomalies have the exact event "
            f"sequence of a normal training session: recall <= {recall:.3f}, "
            f"F1 <= {2 * recall / (1 + recall):.3f} for any sequence-only detector")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-quality"))
    args = parser.parse_args()
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    demo = out / "demo-data"
    if not (demo / "labels.csv").is_file():
        radar("synth", str(demo), "--days", "4", "--sessions", "2000", "--seed", "7")
    rows = run_case("demo-labels", demo, demo / "labels.csv", out, [])
    rows += run_case("demo-has-error", demo, demo / "labels.csv", out,
                     ["data.train_filter=no_error"])
    notes = []
    source = SHARED / "hdfs_100k" / "sessions.jsonl"
    if source.is_file():
        from radar.data.convert import convert_hdfs_100k

        hdfs = out / "hdfs-data"
        convert_hdfs_100k(source, hdfs)
        rows += run_case("hdfs_100k", hdfs, hdfs / "labels.csv", out,
                         ["data.max_seq_length=300", "model.max_position_embeddings=300"])
        notes.append(hdfs_ceiling(source))
    print("| case | score | precision | recall | F1 | ROC-AUC | sessions (anomalous) | s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['score']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['f1']:.3f} | {r['roc_auc']:.3f} | {r['sessions']} ({r['anomalous']}) | "
              f"{r['seconds']:.0f} |")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
