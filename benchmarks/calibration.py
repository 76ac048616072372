"""Threshold calibration methods side by side, on one trained model per case.

    python benchmarks/calibration.py --workdir /tmp/radar-calibration

For each case LogBERT is trained once (`radar run`, demo config); each further method
reuses the trained model and only recalibrates (a changed `detection.*` setting does
that), so the rows differ by the threshold alone. Cases:

  demo-labels     demo generator seed 7, training/calibration on labelled-normal sessions
  demo-has-error  same data, training/calibration on has_error == false: about 4% of the
                  held-out "normal" sessions are silent anomalies (contamination)
  hdfs_100k       ../shared/data/hdfs_100k (skipped when absent)

Methods: percentile 99.5 (default), 99 and 98, and best_f1 (labelled held-out sessions). Every threshold is set on held-out sessions of the
training days; the metrics are on the validation days.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cases import demo_data, hdfs_data, radar_demo_config

METHODS = tuple((f"percentile p{p}", ["detection.threshold_method=percentile",
                                        f"detection.threshold_percentile={p}"])
                for p in (99.5, 99, 98)) + (
    ("best_f1", ["detection.threshold_method=best_f1"]),)



def run_case(name: str, data: Path, labels: Path, out: Path, extra: list[str]) -> list[dict]:
    rows = []
    run_dir = out / name
    for method, settings in METHODS:
        radar_demo_config("run", ["logbert"], data, labels, run_dir, out / "cache",
                          [*extra, *settings])
        summary = json.loads((run_dir / "summary.json").read_text())
        calibration = json.loads((run_dir / "calibration.json").read_text())
        m = summary["metrics"]
        rows.append({"case": name, "method": method, "threshold": calibration["threshold"],
                     "precision": m["precision"], "recall": m["recall"], "f1": m["f1"],
                     "roc_auc": m["roc_auc"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-calibration"))
    args = parser.parse_args()
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    demo = demo_data(out)
    rows = run_case("demo-labels", demo, demo / "labels.csv", out, [])
    rows += run_case("demo-has-error", demo, demo / "labels.csv", out,
                     ["data.train_filter=no_error"])
    hdfs = hdfs_data(out)
    if hdfs is not None:
        rows += run_case("hdfs_100k", hdfs, hdfs / "labels.csv", out,
                         ["data.max_seq_length=300", "models.logbert.max_position_embeddings=300"])
    print("| case | method | threshold | precision | recall | F1 | ROC-AUC |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['method']} | {r['threshold']:.3f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['f1']:.3f} | {r['roc_auc']:.3f} |")


if __name__ == "__main__":
    main()
