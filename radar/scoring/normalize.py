"""Make detectors' raw scores comparable before they are combined.

Each detector's scores live on their own scale (an NLL, a miss ratio, a
distance). A normaliser is fitted on the scores of *normal* held-out sessions and
maps a raw score to "how unusual among normal sessions":

- ``ecdf``: the surprise ``-log10 p`` where ``p`` is the share of normal sessions
  scoring at least as high (``(count + 1) / (n + 1)``, never 0). Above the
  ``TAIL_QUANTILE`` of the normal scores, where the empirical share runs out, ``p``
  follows an exponential tail fitted to the excesses over that quantile (the
  peaks-over-threshold estimate), so sessions beyond every normal one still keep
  their order instead of all tying at ``1 / (n + 1)``. 2 means "1 in 100 normal
  sessions score this high", 3 "1 in 1000", whatever the detector.
- ``robust_z``: ``(x - median) / (1.4826 x MAD)``, the IQR as a fallback spread.

Both are monotone, so each detector's own ranking is kept; the state is a few
numbers plus at most ``MAX_QUANTILES`` quantiles, saved as JSON.
"""

from __future__ import annotations

import numpy as np

from radar.errors import RadarError

NORMALIZERS = ("ecdf", "robust_z")
TAIL_QUANTILE = 0.9
MAX_QUANTILES = 2001


class Normalizer:
    """Fitted per-detector map from raw scores to a common scale (higher = rarer)."""

    def __init__(self, method: str = "ecdf"):
        if method not in NORMALIZERS:
            raise RadarError(f"ensemble.normalize must be one of {', '.join(NORMALIZERS)}; "
                             f"got {method!r}")
        self.method = method
        self.state: dict = {}

    def fit(self, normal_scores: np.ndarray) -> Normalizer:
        scores = np.asarray(normal_scores, dtype=np.float64)
        scores = np.sort(scores[np.isfinite(scores)])
        if scores.size == 0:
            raise RadarError("no finite normal scores to fit the ensemble normaliser on")
        if self.method == "robust_z":
            median = float(np.median(scores))
            spread = 1.4826 * float(np.median(np.abs(scores - median)))
            if spread <= 0:
                spread = float(np.subtract(*np.percentile(scores, [75, 25]))) / 1.349
            self.state = {"median": median, "spread": max(spread, 1e-12)}
            return self
        n = scores.size
        # Quantiles of the normal scores stand in for the sorted sample when it is large.
        if n > MAX_QUANTILES:
            sample = np.quantile(scores, np.linspace(0.0, 1.0, MAX_QUANTILES))
        else:
            sample = scores
        tail_start = float(np.quantile(scores, TAIL_QUANTILE))
        excess = scores[scores > tail_start] - tail_start
        scale = float(excess.mean()) if excess.size else 0.0
        if scale <= 0:   # no spread in the tail: use the whole sample's
            scale = max(float(scores.std()), 1e-12)
        self.state = {"n": int(n), "sample": sample.tolist(), "tail_start": tail_start,
                      "tail_share": float((scores > tail_start).mean()), "tail_scale": scale}
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        if not self.state:
            raise RadarError("normaliser used before it was fitted")
        x = np.asarray(scores, dtype=np.float64)
        if self.method == "robust_z":
            return (x - self.state["median"]) / self.state["spread"]
        s = self.state
        sample = np.asarray(s["sample"])
        n = s["n"]
        # Share of normal sessions scoring >= x, from the (possibly quantised) sample.
        at_least = 1.0 - np.searchsorted(sample, x, side="left") / sample.size
        p_body = (at_least * n + 1.0) / (n + 1.0)
        share = max(s["tail_share"], 1.0 / (n + 1.0))
        p_tail = share * np.exp(-(x - s["tail_start"]) / s["tail_scale"])
        p = np.where(x > s["tail_start"], np.minimum(p_body, p_tail), p_body)
        p = np.where(np.isnan(x), 1.0, p)
        with np.errstate(divide="ignore"):
            out = -np.log10(np.clip(p, 1e-300, 1.0))
        return np.where(np.isposinf(x), np.inf, out)

    def to_dict(self) -> dict:
        return {"method": self.method, "state": self.state}

    @classmethod
    def from_dict(cls, data: dict) -> Normalizer:
        out = cls(data["method"])
        out.state = dict(data["state"])
        return out
