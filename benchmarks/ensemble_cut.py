"""How an ensemble's members combine and where its cut falls, without labels, at rates the
run is not told: measured on the trained label-free runs of benchmarks/quality.py.

For each finished `labelfree` ensemble run in WORKDIR/runs, every member scores the
run's held-out calibration sessions and its reported day again (the same checkpoints, the
same data), then, with the generator's labels read only here:

- combinations: ROC-AUC and hindsight best F1 of mean / max / rank_average of the members'
  ecdf-normalised scores (normalisers fitted as the run fits them);
- cuts: each rule sets a threshold on the held-out day's cross-fitted combined scores
  (what `Combination.fit` does) and is scored on the reported day: F1 and the false-alarm
  rate on its true-normal sessions, for `percentile` (p99.5 of the screened held-out
  sessions, the detection default), `tail`, `knee` (the ensemble default) and, where the
  `pythresh` package is importable (not a RADAR dependency), a few of its thresholders
  fitted on the same held-out scores.

    python benchmarks/quality.py --workdir /tmp/rq --case labelfree --ensemble   # train first
    python benchmarks/ensemble_cut.py --workdir /tmp/rq

Members: `--member` (repeatable; default the run's detectors). `--with-pca` adds the `pca`
count detector fitted on the run's training sessions, as `radar run --detector pca` would.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import precision_recall_curve, roc_auc_score

from radar.config import EnsembleConfig, load_config
from radar.data.dataset import SessionCorpus, window_length
from radar.data.selection import split_and_prepare, training_sets
from radar.plugins import make_detector
from radar.rundir import best_checkpoint
from radar.scoring.calibration import knee_cut, tail_cut
from radar.scoring.combine import cross_fitted_scores, make_combiner
from radar.scoring.run import LoadedDetector, load_trained, score_corpus
from radar.training.fit import fit_scoring

PYTHRESH = ("zscore", "karch", "mixmod", "clf", "gesd", "regr", "moll")
CPU = torch.device("cpu")


def run_scores(run: Path, members: list[str] | None, with_pca: bool) -> dict:
    """Each member's raw scores of the held-out and the reported sessions, and labels."""
    config = load_config(run / "config.yaml")
    train, val = split_and_prepare(config.data, run, workers=1, labels=None,
                                   log=lambda message: None)
    sets = training_sets(config.data, window_length(config.data.max_seq_length), train, val)
    reported = SessionCorpus(val.days, sets.vocab, sets.train.window)
    names = members or list(config.detectors)
    loaded = {name: load_trained(best_checkpoint(run / name), CPU) for name in names}
    if with_pca:
        detector = make_detector("pca", config)
        model = detector.build_model(sets.vocab, sets.train.window)
        loaded["pca"] = LoadedDetector(detector, model, sets.vocab, config, None, run, {})
        fit_scoring(loaded["pca"], sets.train, batch_size=128, device=CPU, seed=0)
    out = {"names": list(loaded), "normal": sets.holdout_normal}
    for key, corpus in (("held", sets.holdout), ("reported", reported)):
        columns = [score_corpus(item, corpus, batch_size=128, device=CPU).score
                   for item in loaded.values()]
        out[key] = np.stack(columns, axis=1)
    out["labels"] = {"held": corpus_labels(run, sets.holdout, train.names),
                     "reported": corpus_labels(run, reported, val.names)}
    return out


def corpus_labels(run: Path, corpus: SessionCorpus, names: list[str]) -> np.ndarray:
    """The generator's labels of a corpus's sessions (labels.csv beside the day files)."""
    config = load_config(run / "config.yaml")
    labels_csv = Path(config.data.preprocessed_dir) / "labels.csv"
    with open(labels_csv, newline="", encoding="utf-8") as handle:
        truth = {(row["file"], int(row["session_id"])): int(row["label"])
                 for row in csv.DictReader(handle)}
    out = np.zeros(corpus.n_sessions, dtype=bool)
    for d, day in enumerate(corpus.days):
        rows = np.flatnonzero(corpus.sessions.day == d)
        ids = np.asarray(day.session_ids)[corpus.sessions.row[rows]]
        out[rows] = [truth.get((Path(names[d]).name, int(i)), 0) == 1 for i in ids]
    return out


def outcome(labels: np.ndarray, scores: np.ndarray, cut: float) -> tuple[float, float]:
    """(F1, false-alarm rate on the true-normal sessions) of ``score > cut``."""
    flagged = scores > cut
    tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
    fn = int((~flagged & labels).sum())
    return (2 * tp / (2 * tp + fp + fn) if tp else 0.0), fp / max(int((~labels).sum()), 1)


def best_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(labels, scores)
    return float((2 * precision * recall / np.maximum(precision + recall, 1e-12)).max())


def pythresh_cuts(held: np.ndarray) -> dict[str, float]:
    try:
        import importlib

        importlib.import_module("pythresh")
    except ImportError:
        return {}
    cuts = {}
    for name in PYTHRESH:
        module = importlib.import_module(f"pythresh.thresholds.{name}")
        cls = next(getattr(module, a) for a in dir(module) if a.lower() == name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flagged = cls().eval(held) == 1
        cuts[f"pythresh {name}"] = float(held[flagged].min()) if flagged.any() else np.inf
    return cuts


def measure(scores: dict) -> dict:
    names, normal = scores["names"], scores["normal"]
    held, reported = scores["held"], scores["reported"]
    held = np.where(np.isfinite(held), held, np.nanmax(held[np.isfinite(held)]) + 1)
    reported = np.where(np.isfinite(reported), reported, held.max() + 1)
    y = scores["labels"]["reported"]
    row: dict = {"rate_held": float(scores["labels"]["held"].mean()),
                 "members": {}, "combinations": {}, "cuts": {}}
    for j, name in enumerate(names):
        row["members"][name] = (roc_auc_score(y, reported[:, j]), best_f1(y, reported[:, j]))
    for method in ("mean", "max", "rank_average"):
        config = EnsembleConfig(method=method)
        combined = make_combiner(config).fit(held[normal], names, None, "ecdf").combine(reported)
        row["combinations"][method] = (roc_auc_score(y, combined), best_f1(y, combined))
    config = EnsembleConfig(method="mean")
    out_of_fold = cross_fitted_scores(config, held, names, [0.0] * len(names), normal, 0)
    combined = make_combiner(config).fit(held[normal], names, None, "ecdf").combine(reported)
    cuts = {"percentile (p99.5, screened)": float(np.percentile(out_of_fold[normal], 99.5,
                                                                method="higher")),
            "tail": min(tail_cut(out_of_fold, 0.005),
                        float(np.percentile(out_of_fold, 99.5, method="higher"))),
            "knee (default)": knee_cut(out_of_fold), **pythresh_cuts(out_of_fold)}
    row["cuts"] = {name: outcome(y, combined, cut) for name, cut in cuts.items()}
    row["hindsight"] = best_f1(y, combined)
    return row


def spread(values: list[float], fmt: str = ".3f") -> str:
    return (f"{statistics.fmean(values):{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})"
            if len(values) > 1 else f"{values[0]:{fmt}}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-quality"))
    parser.add_argument("--member", action="append", dest="members")
    parser.add_argument("--with-pca", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[float, list[dict]] = {}
    for run in sorted((args.workdir / "runs").glob("labelfree-synth-*")):
        if not run.is_dir() or not (run / "ensemble.json").is_file():
            continue
        rate = float(run.name.split("-r")[1].split("-")[0])
        row = measure(run_scores(run, args.members, args.with_pca))
        rows.setdefault(rate, []).append(row)
        print(f"{run.name}: hindsight {row['hindsight']:.3f}; " + "; ".join(
            f"{k} F1 {f:.3f} FA {fa:.4f}" for k, (f, fa) in row["cuts"].items()), flush=True)
    print("\n| rate | runs | combination | ROC-AUC | hindsight best F1 |\n|---:|---:|---|---|---|")
    for rate, group in sorted(rows.items()):
        for method in group[0]["combinations"]:
            print(f"| {rate:g} | {len(group)} | {method} | "
                  f"{spread([g['combinations'][method][0] for g in group])} | "
                  f"{spread([g['combinations'][method][1] for g in group])} |")
        for name in group[0]["members"]:
            print(f"| {rate:g} | {len(group)} | member {name} | "
                  f"{spread([g['members'][name][0] for g in group])} | "
                  f"{spread([g['members'][name][1] for g in group])} |")
    print("\n| rate | cut (ensemble mean) | F1 | false alarms (budget 0.005) | hindsight F1 |"
          "\n|---:|---|---|---|---|")
    for rate, group in sorted(rows.items()):
        for name in group[0]["cuts"]:
            print(f"| {rate:g} | {name} | {spread([g['cuts'][name][0] for g in group])} | "
                  f"{spread([g['cuts'][name][1] for g in group], '.4f')} | "
                  f"{spread([g['hindsight'] for g in group])} |")


if __name__ == "__main__":
    main()
