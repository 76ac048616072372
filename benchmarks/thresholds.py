"""Label-free thresholds on contaminated held-out scores: ``tail`` against ``percentile``.

No model is trained: the held-out scores are drawn from normal-score shapes a
detector produces (maxima over positions: Gumbel; gamma; exponential; a point mass at
0 with a half-normal tail; a heavy log-normal) mixed with a share of anomalies, and
each method sets a threshold for a 0.5% false-alarm budget. Printed per shape and
contamination, mean (min..max) over seeds: the false-alarm rate on fresh normal
scores of the same shape and the recall on fresh anomalies.

Anomalies come in two kinds: ``far`` (uniform between the normal 99.9th percentile
and the NLL cap, what unseen or impossible events give) and ``near`` (uniform between
the normal 99th and 99.9th percentiles: subtle ones, partly inside the normal tail).

    python benchmarks/thresholds.py --seeds 5
"""

from __future__ import annotations

import argparse

import numpy as np

from radar.config import DetectionConfig
from radar.scoring.calibration import set_threshold

SHAPES = {
    "gumbel": lambda rng, n: rng.gumbel(1.0, 0.5, n),
    "gamma": lambda rng, n: rng.gamma(2.0, 0.5, n),
    "exponential": lambda rng, n: rng.exponential(1.0, n),
    "atom+halfnormal": lambda rng, n: np.where(rng.random(n) < 0.6, 0.0,
                                               np.abs(rng.normal(size=n))),
    "lognormal": lambda rng, n: rng.lognormal(0.0, 0.6, n),
}
CAP = 18.42


def anomalies(rng, normal_reference: np.ndarray, n: int, kind: str) -> np.ndarray:
    low, high = ((np.quantile(normal_reference, 0.999), CAP) if kind == "far" else
                 tuple(np.quantile(normal_reference, [0.99, 0.999])))
    return rng.uniform(low, high, n)


def one(shape: str, share: float, kind: str, method: str, seed: int, n: int = 5000):
    rng = np.random.default_rng(seed)
    draw = SHAPES[shape]
    reference = draw(rng, 200_000)
    n_anomalies = round(share * n)
    held = np.r_[draw(rng, n - n_anomalies), anomalies(rng, reference, n_anomalies, kind)]
    calibration = set_threshold(DetectionConfig(threshold_method=method),
                                normal_scores=held, score_name="s")
    fresh_normal = draw(rng, 100_000)
    fresh_anomalies = anomalies(rng, reference, 10_000, kind)
    return (float(np.mean(fresh_normal > calibration.threshold)),
            float(np.mean(fresh_anomalies > calibration.threshold)))


def spread(values: list[float], percent: bool) -> str:
    scale, unit = (100.0, "%") if percent else (1.0, "")
    v = np.asarray(values) * scale
    return f"{v.mean():.2f}{unit} ({v.min():.2f}..{v.max():.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.01, 0.05, 0.10])
    args = parser.parse_args()
    print("| shape | anomalies | share | method | false alarms (budget 0.5%) | recall |")
    print("|---|---|---:|---|---:|---:|")
    for shape in SHAPES:
        for kind in ("far", "near"):
            for share in args.shares:
                if share == 0 and kind == "near":
                    continue
                for method in ("tail", "percentile"):
                    rows = [one(shape, share, kind, method, seed) for seed in range(args.seeds)]
                    fa, recall = zip(*rows)
                    shown = spread(list(recall), False) if share else "–"
                    print(f"| {shape} | {kind if share else '–'} | {share:.0%} | {method} | "
                          f"{spread(list(fa), True)} | {shown} |")


if __name__ == "__main__":
    main()
