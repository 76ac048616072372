"""Which signal should screen the held-out day: transition rarity alone (the default),
or rarity combined with the trained model's own scores? And does a refit help?

For each label-free LogBERT run that ``benchmarks/quality.py --case labelfree`` left in
``--workdir`` (runs/labelfree-synth-d4-n2000-rR-sS-logbert, its data in data/), this
scores every day file with the run's model (`radar detect`, once, kept in
``WORKDIR/screen-signals/``), then re-sets the threshold offline the way
``detection.threshold_method: percentile`` does (99.5th percentile of the held-out day
less ``data.contamination`` = 5% of its sessions) with the 5% chosen by

- ``rarity``: the rarest transition (radar/data/screen.py, what RADAR does);
- ``rank-mean``: the mean of the session's rank by model score and by rarity;
- ``rank-min``: the lower of the two ranks (a session must be rare *and* score high);
- ``none``: nothing screened,

and prints F1 and the false-alarm rate on the reported (newest) day against the ground
truth. ``--per-service`` prints, from each run's own results and the ground truth, what
*ideal* thresholds would give on the reported day: the 99.5th percentile of its true
normal scores, one for all services against one per service (the most per-service
thresholds could add at this budget). ``--write-refit-labels`` also writes, per run, a label file calling the
``rank-mean`` top 5% of the training days' sessions anomalous and the rest normal:
`radar run ... --labels` on it is a refit (train again without the presumed
anomalies, calibrate on the rest), the experiment in docs/lab/benchmarks.md.

    python benchmarks/screen_signals.py --workdir /tmp/q17 --rate 0.05 --rate 0.01
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import radar

from radar.data.cache import cache_dir_for, open_prepared
from radar.data.screen import session_rarity
from radar.results import iter_results

SHARE = 0.05          # data.contamination's default
PERCENTILE = 99.5     # detection.threshold_percentile's default


def scored_days(run: Path, data: Path, into: Path) -> tuple[list, dict]:
    """(prepared days, {(file, session_id): score}) of every day file of ``data``."""
    out = into / f"{run.name}.jsonl"
    cache = into / f"cache-{data.name}"
    if not out.is_file():
        radar("detect", "--checkpoint", str(run / "best_model.pt"), "--input", str(data),
              "--output", str(out), "--format", "jsonl", "--cache-dir", str(cache),
              log=into / f"{run.name}.log")
    files = sorted(data.glob("preprocessed_logs_*.json"))
    days = [(path.name, open_prepared(cache_dir_for(path, cache))) for path in files]
    scores = {(r["file"], r["session_id"]): r["anomaly_score"]
              for r in map(json.loads, out.read_text().splitlines())}
    return days, scores


def columns(name: str, day, scores: dict, truth: dict) -> tuple[np.ndarray, np.ndarray]:
    ids = [int(i) for i in np.asarray(day.session_ids)]
    return (np.array([scores[(name, i)] for i in ids]),
            np.array([truth[(name, i)] for i in ids]))


def screen_keys(score: np.ndarray, rarity: np.ndarray) -> dict[str, np.ndarray]:
    """Per screen, a key whose highest ``SHARE`` is screened (higher: more anomalous)."""
    by_score, by_rarity = rankdata(score), rankdata(rarity)
    return {"rarity": rarity, "rank-mean": by_score + by_rarity,
            "rank-min": np.minimum(by_score, by_rarity), "none": np.zeros(score.size)}


def top_share(key: np.ndarray) -> np.ndarray:
    drop = np.zeros(key.size, dtype=bool)
    drop[np.argsort(-key, kind="stable")[:int(SHARE * key.size)]] = True
    return drop


def one_run(run: Path, data: Path, into: Path, refit_labels: bool) -> list[dict]:
    days, scores = scored_days(run, data, into)
    with open(data / "labels.csv", newline="") as handle:
        truth = {(r["file"], int(r["session_id"])): int(r["label"])
                 for r in csv.DictReader(handle)}
    training = days[:-1]                     # the reported day is the newest (split 0.25)
    rarity = session_rarity([d for _, d in training],
                            [np.ones(d.n_sessions, dtype=bool) for _, d in training])
    # Rarest first, ties by mean log-support, as screen.py orders them.
    rare_key = [-(rarest + 1e-3 * mean_log) for rarest, mean_log in rarity]
    held_score, held_truth = columns(*training[-1], scores, truth)    # the held-out day
    new_score, new_truth = columns(*days[-1], scores, truth)
    keys = screen_keys(held_score, rare_key[-1])
    # How much the rarest and the highest-scoring 5% agree: could it tell the rate?
    overlap = float((top_share(keys["rarity"]) & top_share(held_score)).sum()
                    / max(1, int(SHARE * held_score.size)))
    rows = []
    for method, key in keys.items():
        drop = top_share(key)
        threshold = float(np.percentile(held_score[~drop], PERCENTILE))
        flagged = new_score > threshold
        rows.append({"run": run.name, "screen": method, "threshold": threshold,
                     "f1": float(f1_score(new_truth, flagged)),
                     "false_alarms": float(flagged[new_truth == 0].mean()),
                     "screened_anomalous": float(held_truth[drop].mean()) if drop.any()
                     else None, "overlap": overlap})
    if refit_labels:
        keys = [(name, int(i)) for name, day in training for i in np.asarray(day.session_ids)]
        score = np.array([scores[k] for k in keys])
        drop = top_share(screen_keys(score, np.concatenate(rare_key))["rank-mean"])
        with open(into / f"{run.name}-refit-labels.csv", "w") as out:
            out.write("file,session_id,label\n")
            out.writelines(f"{name},{i},{int(d)}\n" for (name, i), d in zip(keys, drop))
    return rows


def per_service_ceiling(run: Path, data: Path) -> dict:
    """F1 and false alarms on the reported day at the ideal global and per-service cuts."""
    records = list(iter_results(run / "anomaly_results.json"))
    with open(data / "labels.csv", newline="") as handle:
        truth = {(r["file"], int(r["session_id"])): int(r["label"])
                 for r in csv.DictReader(handle)}
    score = np.array([r["anomaly_score"] for r in records])
    label = np.array([truth[(r["file"], r["session_id"])] for r in records])
    service = np.array([r["service_name"] for r in records])
    one = score > np.percentile(score[label == 0], PERCENTILE)
    each = np.zeros(score.size, dtype=bool)
    for name in np.unique(service):
        rows = service == name
        each[rows] = score[rows] > np.percentile(score[rows & (label == 0)], PERCENTILE)
    return {"run": run.name, "f1_global": float(f1_score(label, one)),
            "f1_per_service": float(f1_score(label, each)),
            "fa_global": float(one[label == 0].mean()),
            "fa_per_service": float(each[label == 0].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rate", type=float, action="append", default=[])
    parser.add_argument("--seed", type=int, action="append", default=[])
    parser.add_argument("--write-refit-labels", action="store_true")
    parser.add_argument("--per-service", action="store_true")
    args = parser.parse_args()
    runs = [(rate, seed, f"synth-d4-n2000-r{rate:g}-s{seed}")
            for rate in args.rate or [0.05] for seed in args.seed or [1, 2, 3]]
    if args.per_service:
        print("| rate | seed | F1, one ideal cut | F1, ideal cut per service | false alarms |")
        print("|---:|---:|---:|---:|---|")
        for rate, seed, stem in runs:
            row = per_service_ceiling(args.workdir / "runs" / f"labelfree-{stem}-logbert",
                                      args.workdir / "data" / stem)
            print(f"| {rate:g} | {seed} | {row['f1_global']:.3f} | {row['f1_per_service']:.3f} "
                  f"| {row['fa_global']:.4f} / {row['fa_per_service']:.4f} |")
        return
    into = args.workdir / "screen-signals"
    into.mkdir(exist_ok=True)
    print("| rate | seed | screen | threshold | F1 | false alarms | screened that are anomalous "
          "| top 5% by rarity also top 5% by score |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for rate, seed, stem in runs:
        run = args.workdir / "runs" / f"labelfree-{stem}-logbert"
        if not (run / "best_model.pt").is_file():
            print(f"(no run {run})")
            continue
        for row in one_run(run, args.workdir / "data" / stem, into, args.write_refit_labels):
            anomalous = ("-" if row["screened_anomalous"] is None
                         else f"{row['screened_anomalous']:.2f}")
            print(f"| {rate:g} | {seed} | {row['screen']} | {row['threshold']:.2f} | "
                  f"{row['f1']:.3f} | {row['false_alarms']:.4f} | {anomalous} | {row['overlap']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
