"""Every detector alone and every ensemble combiner, on the demo data and HDFS_100k.

    python benchmarks/ensemble.py --workdir /tmp/radar-ensemble

One `radar run` per case trains all four built-in detectors (demo config, each with its
`models.NAME` section) into one run folder; each further combiner reuses the trained and
calibrated detectors and only recombines, so the rows differ by the combination alone.

Cases: demo-labels (generator seed 7, training on labelled-normal sessions) and
hdfs_100k (../shared/data/hdfs_100k; skipped when absent). Prints one table row per
detector and per combiner: precision, recall, F1, ROC-AUC on the validation days, with
each threshold calibrated on held-out sessions of the training days.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cases import demo_data, hdfs_data, radar_demo_config

DETECTORS = ("logbert", "deeplog", "lstm", "tcn")
COMBINERS = ("mean", "max", "rank_average", "vote")



def run_case(name: str, data: Path, labels: Path, out: Path, extra: list[str]) -> list[dict]:
    run_dir = out / name
    rows = []
    for combiner in COMBINERS:
        start = time.perf_counter()
        radar_demo_config("run", DETECTORS, data, labels, run_dir, out / "cache",
                          [f"ensemble.method={combiner}", *extra])
        seconds = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        if combiner == COMBINERS[0]:
            for detector, entry in summary["per_detector"].items():
                rows.append(_row(name, detector, entry["metrics"], None))
            rows[-len(DETECTORS)]["seconds"] = seconds   # training all four, first run
        rows.append(_row(name, f"ensemble:{combiner}", summary["metrics"], seconds))
        pairs = summary["agreement"]["pairs"]
    print(f"{name}: agreement " + ", ".join(
        f"{pair} {v['agree']:.3f} (rho {v['spearman']:.2f})" for pair, v in pairs.items()))
    return rows


def _row(case: str, what: str, m: dict, seconds: float | None) -> dict:
    return {"case": case, "what": what, "precision": m["precision"], "recall": m["recall"],
            "f1": m["f1"], "roc_auc": m["roc_auc"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-ensemble"))
    parser.add_argument("--skip-hdfs", action="store_true")
    args = parser.parse_args()
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    demo = demo_data(out)
    rows = run_case("demo-labels", demo, demo / "labels.csv", out, [])
    hdfs = None if args.skip_hdfs else hdfs_data(out)
    if hdfs is not None:
        rows += run_case("hdfs_100k", hdfs, hdfs / "labels.csv", out,
                         ["data.max_seq_length=300",
                          "models.logbert.max_position_embeddings=300"])
    print("| case | detector / combiner | precision | recall | F1 | ROC-AUC | s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.0f}"
        print(f"| {r['case']} | {r['what']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['f1']:.3f} | {r['roc_auc']:.3f} | {seconds} |")


if __name__ == "__main__":
    main()
