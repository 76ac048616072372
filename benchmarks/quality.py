"""Detection quality of `radar run` on demo data (a fresh seed) and on real HDFS_100k.

Each case runs the real CLI in a subprocess and reads the run's summary.json:

    python benchmarks/quality.py --workdir /tmp/radar-quality
    python benchmarks/quality.py --detector deeplog --detector lstm --detector tcn \
        --case demo-labels --case hdfs_100k

Cases:
  demo-labels    demo generator, seed 7 (not the built-in demo's), training and
                 calibration on sessions labelled normal (the demo config)
  demo-has-error same data, training on has_error == false (the stage configs' default;
                 silent anomalies then sit in the training and calibration data)
  hdfs_100k      ../shared/data/hdfs_100k: train on normal sessions of its train split,
                 threshold from a held-out 10% of them, report on its test split
``--detector NAME`` (repeatable, default logbert) picks the detectors; each runs with
its section of configs/demo.yaml. ``--score NAME`` (repeatable) picks the scores; by
default LogBERT runs max_excess_nll and max_nll, any other detector its default score.
``--case`` (repeatable) picks the cases; by default all three.
HDFS_100k also prints the recall ceiling: test anomalies whose event sequence is
identical to a normal training session cannot be told apart by any sequence model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from cases import HDFS_SOURCE, demo_data, hdfs_data, radar_demo_config

CASES = ("demo-labels", "demo-has-error", "hdfs_100k")
# LogBERT's table in docs/benchmarks.md compares its two NLL scores.
DEFAULT_SCORES = {"logbert": ("max_excess_nll", "max_nll")}


def default_scores(detector: str) -> tuple[str, ...]:
    from radar.plugins import get_detector_class

    if detector in DEFAULT_SCORES:
        return DEFAULT_SCORES[detector]
    return (get_detector_class(detector).config_class().score,)


def has_model_key(detector: str, key: str) -> bool:
    """Whether the detector's model section has ``key`` (e.g. max_position_embeddings)."""
    import dataclasses

    from radar.plugins import get_detector_class

    config_class = get_detector_class(detector).config_class
    return dataclasses.is_dataclass(config_class) and any(
        field.name == key for field in dataclasses.fields(config_class))


def run_case(name: str, data: Path, labels: Path, out: Path, extra: list[str],
             detector: str, scores: tuple[str, ...]) -> list[dict]:
    rows = []
    for score in scores:
        run_dir = out / f"{name}-{detector}-{score}"
        start = time.perf_counter()
        radar_demo_config("run", [detector], data, labels, run_dir, out / "cache",
                          [f"model.score={score}", *extra])
        seconds = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        m = summary["metrics"]
        rows.append({"case": name, "detector": detector, "score": score,
                     "precision": m["precision"],
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
    parser.add_argument("--detector", action="append", dest="detectors",
                        help="detector to measure (repeatable; default logbert)")
    parser.add_argument("--score", action="append", dest="scores",
                        help="score to run (repeatable; default: see the module docstring)")
    parser.add_argument("--case", action="append", dest="cases", choices=CASES,
                        help="case to run (repeatable; default all)")
    args = parser.parse_args()
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    cases = args.cases or CASES
    rows, notes = [], []
    demo = demo_data(out) if {"demo-labels", "demo-has-error"} & set(cases) else None
    hdfs = hdfs_data(out) if "hdfs_100k" in cases else None
    if hdfs is not None:
        notes.append(hdfs_ceiling(HDFS_SOURCE))
    for detector in args.detectors or ["logbert"]:
        scores = tuple(args.scores) if args.scores else default_scores(detector)
        if "demo-labels" in cases:
            rows += run_case("demo-labels", demo, demo / "labels.csv", out, [], detector, scores)
        if "demo-has-error" in cases:
            rows += run_case("demo-has-error", demo, demo / "labels.csv", out,
                             ["data.train_filter=no_error"], detector, scores)
        if hdfs is not None:
            extra = ["data.max_seq_length=300"]
            if has_model_key(detector, "max_position_embeddings"):
                extra.append("model.max_position_embeddings=300")
            rows += run_case("hdfs_100k", hdfs, hdfs / "labels.csv", out, extra, detector,
                             scores)
    print("| case | detector | score | precision | recall | F1 | ROC-AUC "
          "| sessions (anomalous) | s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['detector']} | {r['score']} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['f1']:.3f} | {r['roc_auc']:.3f} | "
              f"{r['sessions']} ({r['anomalous']}) | {r['seconds']:.0f} |")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
