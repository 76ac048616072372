"""Detection quality of `radar run`, label-free by default, against generated ground truth.

Each case runs the real CLI in a subprocess. Label-free cases run `radar run` WITHOUT
--labels (default data settings, configs/demo.yaml model sizes) into a run folder; only
afterwards does `radar evaluate --results RUN/anomaly_results.json --labels labels.csv
--json` give the true metrics, so no label reaches the run. A multi-detector run is
evaluated for its ensemble answer and for each member (RUN/NAME/anomaly_results.json).

    python benchmarks/quality.py --case labelfree --rate 0.05 --seed 1 --sessions 1000
    python benchmarks/quality.py --case labelfree --ensemble --seed 1 --seed 2 --seed 3
    python benchmarks/quality.py --case chronological --case labels

Cases:
  labelfree      `radar synth` at each --rate (default 0.01, 0.05, 0.10), one data set
                 and training seed per --seed (default 1, 2, 3), --days days (default 4:
                 two train, the newest training day held out for the threshold, the last
                 reported on); precision, recall, F1, ROC-AUC and the false-alarm rate on
                 the reported day's true-normal sessions
  chronological  the same with day-to-day drift (`radar synth --drift`, default 0.3) over
                 6 days: train on the earlier days, report the last; the false-alarm rate
                 on its true-normal sessions beside the budget the threshold was set for
                 (100 - detection.threshold_percentile %) and beside the rate on the
                 held-out calibration day (scored with `radar detect`)
  labels         the demo-labels case: seed 7 data, --labels given (train and calibrate
                 on sessions labelled normal, as configs/demo.yaml says)
  hdfs_100k      ../shared/data/hdfs_100k with its labels: train on normal sessions of its
                 train split, report on its test split (skipped without ../shared)
  hdfs_labelfree the same real data with NO label file: every session of the train split
                 trains (its anomalies too), default data settings; data the generator
                 never shaped (skipped without ../shared)
  release        a release on the reported day: `radar synth --release 0.2` (the same
                 days, a new benign log line in 20% of the last day's sessions, from
                 midday) scored with the labelfree run of the same rate and seed (first
                 --rate; trained first when missing) by `radar detect`, with drift
                 handling (the default) and without (--drift-share 0); false alarms
                 beside the same day without the release
Where a run wrote quality.json (injected corruptions), its injected recall per kind is
printed beside the true recall per anomaly kind (labels.csv's anomaly_kind).
Results are appended to WORKDIR/quality-rows.jsonl; a finished run folder is reused, so
an interrupted matrix resumes, and --table-only prints the tables of what is there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from cases import (
    HDFS_SOURCE,
    hdfs_data,
    radar,
    radar_demo_config,
    radar_evaluate,
    radar_labelfree_run,
    synth_data,
)

CASES = ("labelfree", "chronological", "labels", "hdfs_100k", "hdfs_labelfree", "release")
RELEASE_SHARE = 0.2
ENSEMBLE = ("logbert", "deeplog", "lstm", "tcn")
# Display only: which generated anomaly kinds an injected corruption resembles.
INJECTED_VS_TRUE = {"drop": ("missing_step",), "swap": ("out_of_order",),
                    "repeat": ("repetition_burst",), "truncate": ("truncated",),
                    "foreign": ("unseen_event", "cross_service")}
METRICS = ("precision", "recall", "f1", "roc_auc", "false_alarm_rate")


def false_alarm_rate(report: dict) -> float | None:
    """Share of true-normal sessions flagged, from a `radar evaluate` report."""
    normal = report["n"] - report["n_anomalous"]
    return report["fp"] / normal if normal else None


def score_view(results: Path, labels: Path) -> dict:
    """Share of each generated anomaly kind flagged in a results file, and where the
    true-normal scores' upper tail lies (for telling a threshold problem from a score
    problem)."""
    import csv

    import numpy as np

    from radar.results import load_results

    # labels.csv of the generator names each anomaly's kind; a converted real data set's
    # (hdfs_100k) has none, so its anomalies count under one kind, "".
    with open(labels, newline="", encoding="utf-8") as handle:
        truth = {(row["file"], int(row["session_id"])): (int(row["label"]),
                                                         row.get("anomaly_kind") or "")
                 for row in csv.DictReader(handle)}
    found = load_results(results)
    hits: dict[str, list[bool]] = {}
    normal_scores = []
    for file, sid, flagged, score in zip(found.file, found.session_id, found.is_anomaly,
                                         found.score):
        label, kind = truth.get((found.files[file], int(sid)), (0, ""))
        if label == 1:
            hits.setdefault(kind, []).append(bool(flagged))
        else:
            normal_scores.append(score)
    q99, q995 = np.quantile(normal_scores, [0.99, 0.995]) if normal_scores else (None, None)
    return {"true_recall_per_kind": {kind: sum(v) / len(v) for kind, v in sorted(hits.items())},
            "normal_score_p99": float(q99), "normal_score_p995": float(q995)}


def calibration_of(folder: Path) -> dict:
    """How an answer's threshold was set: calibration.json, or for an ensemble member
    (which has none) the record its checkpoint carries."""
    if (folder / "calibration.json").is_file():
        return json.loads((folder / "calibration.json").read_text())
    import torch

    from radar.rundir import best_checkpoint

    return torch.load(best_checkpoint(folder), map_location="cpu",
                      weights_only=True)["calibration"]


def run_folder_rows(run_dir: Path, labels: Path, base: dict, detectors: list[str]) -> list[dict]:
    """One row per answer of a finished run: the run's own and, with several detectors,
    each member's; true metrics from `radar evaluate`."""
    answers = [("ensemble" if len(detectors) > 1 else detectors[0], run_dir)]
    if len(detectors) > 1:
        answers += [(name, run_dir / name) for name in detectors]
    rows = []
    for name, folder in answers:
        report = radar_evaluate(folder / "anomaly_results.json", labels)
        calibration = calibration_of(folder)
        row = {**base, "answer": name, **{k: report.get(k) for k in METRICS[:4]},
               "false_alarm_rate": false_alarm_rate(report),
               "budget": (100 - calibration["percentile"]) / 100
               if calibration.get("percentile") is not None else None,
               "flagged_share_calibration": calibration.get("flagged_share"),
               "threshold": calibration["threshold"], "method": calibration["method"],
               "sessions": report["n"], "anomalous": report["n_anomalous"],
               "best_f1": report.get("best_f1"),
               "best_f1_threshold": report.get("best_f1_threshold"),
               "service_f1": {name: entry.get("f1") for name, entry
                              in (report.get("per_service") or {}).items()
                              if entry.get("n_anomalous")},
               **score_view(folder / "anomaly_results.json", labels)}
        quality = folder / "quality.json"
        if quality.is_file():
            estimate = json.loads(quality.read_text())
            row["injected_recall"] = estimate.get("recall")
            row["injected_false_alarm_rate"] = estimate.get("false_alarm_rate")
            row["injected_recall_per_kind"] = {
                kind: entry.get("recall") for kind, entry in estimate["per_kind"].items()}
        rows.append(row)
    return rows


def calibration_day_rate(run_dir: Path, labels: Path, detectors: list[str]) -> float | None:
    """False-alarm rate on the true-normal sessions of the newest training day (the day
    `data.calibration_split: days` holds out to set the threshold), scored afterwards
    with `radar detect` into RUN/calibration-day/."""
    train_files = (run_dir / "train_files.txt").read_text().split()
    out = run_dir / "calibration-day" / "anomaly_results.json"
    # Scored again whenever the run was (recalibrated runs write a new summary.json).
    if not out.is_file() or out.stat().st_mtime < (run_dir / "summary.json").stat().st_mtime:
        trained = (["--ensemble", str(run_dir)] if len(detectors) > 1 else
                   ["--checkpoint", str(run_dir / "best_model.pt")])
        radar("detect", *trained, "--input", max(train_files), "--output", str(out),
              log=out.parent / "detect.log")
    return false_alarm_rate(radar_evaluate(out, labels))


def labelfree_case(args, out: Path, case: str, rate: float, seed: int, days: int,
                   drift: float) -> list[dict]:
    """One label-free run of ``args.detectors`` on one generated data set."""
    data = synth_data(out / "data", days=days, sessions=args.sessions, anomaly_rate=rate,
                      seed=seed, drift=drift)
    name = "+".join(args.detectors)
    run_dir = out / "runs" / f"{case}-{data.name}-{name}"
    base = {"case": case, "rate": rate, "seed": seed, "days": days, "drift": drift,
            "sessions_per_day": args.sessions, "detectors": name}
    start = time.perf_counter()
    if not (run_dir / "summary.json").is_file():
        radar_labelfree_run(args.detectors, data, run_dir, out / "cache",
                            [f"training.seed={seed}", *args.settings])
    base["seconds"] = round(time.perf_counter() - start)
    rows = run_folder_rows(run_dir, data / "labels.csv", base, args.detectors)
    if case == "chronological":
        rate_held_out = calibration_day_rate(run_dir, data / "labels.csv", args.detectors)
        for row in rows[:1]:
            row["false_alarm_rate_calibration_day"] = rate_held_out
    return rows


def labelled_case(args, out: Path, case: str) -> list[dict]:
    """The labelled cases: `radar run --labels` (train and calibrate on sessions labelled
    normal). labels: the labelfree 0.05 data of each seed; hdfs_100k: one run."""
    rows = []
    for seed in args.seeds if case == "labels" else [0]:
        if case == "labels":
            data = synth_data(out / "data", days=args.days or 4, sessions=args.sessions,
                              anomaly_rate=0.05, seed=seed)
            extra: list[str] = []
        else:
            data = hdfs_data(out)
            if data is None:
                return []
            extra = ["data.max_seq_length=300"] + (
                ["models.logbert.max_position_embeddings=300"]
                if "logbert" in args.detectors else [])
        run_dir = out / "runs" / f"{case}-{data.name}-{'+'.join(args.detectors)}-s{seed}"
        start = time.perf_counter()
        if not (run_dir / "summary.json").is_file():
            radar_demo_config("run", args.detectors, data, data / "labels.csv", run_dir,
                              out / "cache", [f"training.seed={seed}", *extra,
                                              *args.settings])
        base = {"case": case, "rate": 0.05 if case == "labels" else None, "seed": seed,
                "days": args.days or 4, "drift": 0.0, "sessions_per_day": args.sessions,
                "detectors": "+".join(args.detectors),
                "seconds": round(time.perf_counter() - start)}
        rows += run_folder_rows(run_dir, data / "labels.csv", base, args.detectors)
    return rows


def hdfs_labelfree_case(args, out: Path) -> list[dict]:
    """HDFS_100k label-free, one run per --seed: `radar run` without --labels."""
    data = hdfs_data(out)
    if data is None:
        return []
    rows = []
    for seed in args.seeds:
        name = "+".join(args.detectors)
        run_dir = out / "runs" / f"hdfs_labelfree-{name}-s{seed}"
        extra = ["data.max_seq_length=300"] + (
            ["models.logbert.max_position_embeddings=300"] if "logbert" in args.detectors
            else [])
        start = time.perf_counter()
        if not (run_dir / "summary.json").is_file():
            radar_labelfree_run(args.detectors, data, run_dir, out / "cache",
                                [f"training.seed={seed}", *extra, *args.settings])
        base = {"case": "hdfs_labelfree", "rate": None, "seed": seed, "days": 2,
                "drift": 0.0, "sessions_per_day": None, "detectors": name,
                "seconds": round(time.perf_counter() - start)}
        rows += run_folder_rows(run_dir, data / "labels.csv", base, args.detectors)
    return rows


def release_case(args, out: Path, seed: int) -> list[dict]:
    """The labelfree run of (first --rate, seed) scoring the same last day with a release."""
    rate, days = args.rates[0], args.days or 4
    name = "+".join(args.detectors)
    data = synth_data(out / "data", days=days, sessions=args.sessions, anomaly_rate=rate,
                      seed=seed)
    run_dir = out / "runs" / f"labelfree-{data.name}-{name}"
    plain = {r["answer"]: r for r in labelfree_case(args, out, "labelfree", rate, seed, days,
                                                    0.0)}
    released = synth_data(out / "data", days=days, sessions=args.sessions, anomaly_rate=rate,
                          seed=seed, release=RELEASE_SHARE)
    last = max(released.glob("preprocessed_logs_*.json"))
    trained = (["--ensemble", str(run_dir)] if len(args.detectors) > 1 else
               ["--checkpoint", str(run_dir / "best_model.pt")])
    rows = []
    for handling, share in (("drift handled", None), ("drift off", "0")):
        target = run_dir / f"release{RELEASE_SHARE:g}-{handling.replace(' ', '-')}"
        results = target / "anomaly_results.json"
        if not results.is_file() or results.stat().st_mtime < \
                (run_dir / "summary.json").stat().st_mtime:
            radar("detect", *trained, "--input", str(last), "--output", str(results),
                  *(["--drift-share", share] if share else []), log=target / "detect.log")
        report = radar_evaluate(results, released / "labels.csv")
        before = plain["ensemble" if len(args.detectors) > 1 else args.detectors[0]]
        rows.append({"case": "release", "rate": rate, "seed": seed, "days": days,
                     "drift": 0.0, "sessions_per_day": args.sessions, "detectors": name,
                     "answer": handling, **{k: report.get(k) for k in METRICS[:4]},
                     "false_alarm_rate": false_alarm_rate(report),
                     "false_alarm_rate_without_release": before["false_alarm_rate"],
                     "f1_without_release": before["f1"], "budget": before["budget"],
                     "flagged_share_calibration": before["flagged_share_calibration"],
                     "threshold": before["threshold"]})
    return rows


def hdfs_ceiling(source: Path) -> str:
    """What any detector that sees only each session's event sequence can reach on the
    test split: sessions with the same sequence get the same score, so the best ranking
    scores each distinct sequence by its share of anomalies *in the test split itself*
    (an oracle that reads the answers)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve, roc_auc_score

    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    normal = {tuple(r["events"]) for r in rows if r["split"] == "train" and r["label"] == 0}
    test = [r for r in rows if r["split"] == "test"]
    anomalies = [r for r in test if r["label"] == 1]
    same = sum(tuple(r["events"]) in normal for r in anomalies)
    shares: dict[tuple, list[int]] = {}
    for r in test:
        shares.setdefault(tuple(r["events"]), []).append(r["label"])
    labels = np.array([r["label"] for r in test])
    oracle = np.array([np.mean(shares[tuple(r["events"])]) for r in test])
    precision, recall, _ = precision_recall_curve(labels, oracle)
    f1 = (2 * precision * recall / np.maximum(precision + recall, 1e-12)).max()
    return (f"HDFS_100k: {same} of {len(anomalies)} test anomalies have the exact event "
            f"sequence of a normal training session. Ceiling for any detector of event "
            f"sequences (oracle scoring each sequence by its anomaly share in the test "
            f"split): ROC-AUC {roc_auc_score(labels, oracle):.3f}, best F1 {f1:.3f}")


def spread(values: list[float]) -> str:
    """mean (min..max) of a metric over seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ({min(values):.3f}..{max(values):.3f})"


def service_spread(group: list[dict]) -> str:
    """Lowest and highest per-service F1 over the runs of a group (services with
    anomalies on the reported day): how balanced detection is across services."""
    values = [f1 for r in group for f1 in (r.get("service_f1") or {}).values()
              if f1 is not None]
    return f"{min(values):.2f}..{max(values):.2f}" if values else "-"


def group_key(row: dict) -> tuple:
    return (row["case"], row["rate"], row["sessions_per_day"], row["detectors"],
            row["answer"], row["days"], row["drift"])


def print_tables(rows: list[dict]) -> None:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    print("| case | rate | sessions/day | run | answer | seeds | precision | recall | F1 "
          "| ROC-AUC | false alarms (budget) | calib. flagged share | per-service F1 |")
    print("|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for (case, rate, n, run, answer, _, _), group in groups.items():
        seeds = ",".join(str(r["seed"]) for r in group)
        budget = group[0].get("budget")
        cells = [spread([r[k] for r in group]) for k in METRICS]
        cells[-1] += f" ({budget:.3g})" if budget is not None else ""
        print(f"| {case} | {rate if rate is not None else '-'} | {n} | {run} | {answer} "
              f"| {seeds} | " + " | ".join(cells)
              + f" | {spread([r['flagged_share_calibration'] for r in group])} "
              f"| {service_spread(group)} |")
    chrono = [r for r in rows if "false_alarm_rate_calibration_day" in r]
    if chrono:
        print("\n| chronological run | seed | false alarms, reported day | on the held-out "
              "calibration day | budget |")
        print("|---|---|---:|---:|---:|")
        for r in chrono:
            print(f"| {r['detectors']} drift {r['drift']:g} | {r['seed']} "
                  f"| {r['false_alarm_rate']:.4f} "
                  f"| {r['false_alarm_rate_calibration_day']:.4f} | {r['budget']:.3g} |")
    released = [r for r in rows if r["case"] == "release"]
    if released:
        print(f"\n| release ({RELEASE_SHARE:.0%} of the reported day) | rate | seed | false "
              "alarms | without the release | change (points) | F1 (without) |")
        print("|---|---:|---|---:|---:|---:|---|")
        for r in released:
            change = 100 * (r["false_alarm_rate"] - r["false_alarm_rate_without_release"])
            print(f"| {r['answer']} | {r['rate']} | {r['seed']} | {r['false_alarm_rate']:.4f} "
                  f"| {r['false_alarm_rate_without_release']:.4f} | {change:+.2f} "
                  f"| {r['f1']:.3f} ({r['f1_without_release']:.3f}) |")
    print_diagnosis(rows)
    print_injected(rows)


def print_diagnosis(rows: list[dict]) -> None:
    """Per run: the threshold in use beside where it would have had to be."""
    print("\n| case | rate | seed | answer | threshold | normal p99.5 (reported day) "
          "| best-F1 threshold (F1) | calib. flagged share |")
    print("|---|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "normal_score_p995" not in r:
            continue
        share = r["flagged_share_calibration"]
        print(f"| {r['case']} | {r['rate']} | {r['seed']} | {r['answer']} "
              f"| {r['threshold']:.4g} | {r['normal_score_p995']:.4g} "
              f"| {r['best_f1_threshold']:.4g} ({r['best_f1']:.3f}) "
              f"| {'-' if share is None else f'{share:.4f}'} |")


def print_injected(rows: list[dict]) -> None:
    """Injected recall per corruption kind beside true recall per anomaly kind."""
    rows = [r for r in rows if "injected_recall_per_kind" in r]
    if not rows:
        print("\n(no run wrote quality.json: no injected-recall estimate to compare)")
        return
    print("\n| case | rate | seed | answer | injected: recall (kind) | true: recall (kind) |")
    print("|---|---:|---|---|---|---|")
    for r in rows:
        injected = r["injected_recall_per_kind"]
        true = r["true_recall_per_kind"]
        pairs = []
        for kind, similar in INJECTED_VS_TRUE.items():
            shown = "/".join(f"{true[t]:.2f} {t}" for t in similar if t in true) or "-"
            value = injected.get(kind)
            pairs.append(f"{'-' if value is None else f'{value:.2f}'} {kind} ~ {shown}")
        others = [f"{v:.2f} {k}" for k, v in true.items()
                  if not any(k in s for s in INJECTED_VS_TRUE.values())]
        overall = r.get("injected_recall")
        print(f"| {r['case']} | {r['rate']} | {r['seed']} | {r['answer']} | overall "
              f"{'-' if overall is None else f'{overall:.2f}'} | overall {r['recall']:.2f} |")
        for pair in pairs:
            injected_part, true_part = pair.split(" ~ ")
            print(f"| | | | | {injected_part} | {true_part} |")
        if others:
            print(f"| | | | | (no injected twin) | {', '.join(others)} |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-quality"))
    parser.add_argument("--case", action="append", dest="cases", choices=CASES,
                        help="case to run (repeatable; default labelfree)")
    parser.add_argument("--detector", action="append", dest="detectors",
                        help="detector to run (repeatable; default logbert); several "
                             "detectors run together as one ensemble run")
    parser.add_argument("--ensemble", action="store_true",
                        help=f"run {', '.join(ENSEMBLE)} together (one ensemble run)")
    parser.add_argument("--seed", action="append", dest="seeds", type=int,
                        help="data and training seed (repeatable; default 1, 2, 3)")
    parser.add_argument("--rate", action="append", dest="rates", type=float,
                        help="labelfree anomaly rate (repeatable; default 0.01, 0.05, 0.1)")
    parser.add_argument("--sessions", type=int, default=2000, help="sessions per day")
    parser.add_argument("--days", type=int, default=None,
                        help="days generated (default 4; chronological 6)")
    parser.add_argument("--drift", type=float, default=0.3, help="chronological drift")
    parser.add_argument("--set", action="append", dest="settings", default=[],
                        help="extra --set KEY=VALUE for every run (e.g. training.total_steps)")
    parser.add_argument("--table-only", action="store_true",
                        help="print the tables of WORKDIR/quality-rows.jsonl; run nothing")
    args = parser.parse_args()
    args.detectors = list(ENSEMBLE) if args.ensemble else (args.detectors or ["logbert"])
    args.seeds = args.seeds or [1, 2, 3]
    args.rates = args.rates or [0.01, 0.05, 0.1]
    args.cases = args.cases or ["labelfree"]
    return args


def main() -> None:
    args = parse_args()
    out = args.workdir
    out.mkdir(parents=True, exist_ok=True)
    store = out / "quality-rows.jsonl"
    if not args.table_only:
        for case in args.cases:
            runs = []
            if case == "labelfree":
                runs = [(rate, seed, args.days or 4, 0.0) for rate in args.rates
                        for seed in args.seeds]
            elif case == "chronological":
                runs = [(0.05, seed, args.days or 6, args.drift) for seed in args.seeds]
            for rate, seed, days, drift in runs:
                rows = labelfree_case(args, out, case, rate, seed, days, drift)
                with open(store, "a", encoding="utf-8") as handle:
                    handle.writelines(json.dumps(row) + "\n" for row in rows)
                print(f"done: {case} rate {rate} seed {seed}: " + ", ".join(
                    f"{r['answer']} F1 {r['f1']:.3f}" for r in rows), flush=True)
            if case == "release":
                for seed in args.seeds:
                    rows = release_case(args, out, seed)
                    with open(store, "a", encoding="utf-8") as handle:
                        handle.writelines(json.dumps(row) + "\n" for row in rows)
                    print(f"done: release seed {seed}: " + ", ".join(
                        f"{r['answer']} false alarms {r['false_alarm_rate']:.4f} (without the "
                        f"release {r['false_alarm_rate_without_release']:.4f}), F1 "
                        f"{r['f1']:.3f}" for r in rows), flush=True)
            if case == "hdfs_labelfree":
                runs_rows = hdfs_labelfree_case(args, out)
                with open(store, "a", encoding="utf-8") as handle:
                    handle.writelines(json.dumps(row) + "\n" for row in runs_rows)
            if case in ("labels", "hdfs_100k"):
                rows = labelled_case(args, out, case)
                with open(store, "a", encoding="utf-8") as handle:
                    handle.writelines(json.dumps(row) + "\n" for row in rows)
    rows = [json.loads(line) for line in store.read_text().splitlines()] if store.is_file() \
        else []
    latest = {}
    for row in rows:     # a rerun of the same run replaces its earlier rows
        latest[(*group_key(row), row["seed"])] = row
    print_tables(list(latest.values()))
    if HDFS_SOURCE.is_file() and {"hdfs_100k", "hdfs_labelfree"} & set(args.cases):
        print(f"\n{hdfs_ceiling(HDFS_SOURCE)}")


if __name__ == "__main__":
    main()
