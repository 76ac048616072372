"""Thresholds set on sessions of the training days held out from training.

Methods (``detection.threshold_method``):

- ``percentile`` (default): that percentile of the held-out sessions left once
  ``data.contamination`` screened its share of them (radar/data/screen.py), for a
  false-alarm budget of ``100 - threshold_percentile`` % of normal sessions. Anomalies
  the screen missed can only raise a percentile, so false alarms stay within the
  budget; the threshold is then conservative by as much. Exact on clean normal data
  (a label file covering the held-out day); a contamination the screen leaves above
  the budget drags it into the anomalies.
- ``tail``: a false-alarm budget of ``100 - threshold_percentile`` % of
  normal sessions, held on held-out sessions that may hold anomalies (nobody has
  labels). The upper tail of the normal scores is modelled as exponential (peaks over
  a threshold, as in SPOT, Siffer et al. 2017; session scores are maxima over
  positions, whose tails are exponential) above the (1 - TAIL_SHARE) quantile of all
  held-out scores, which a contaminating minority barely moves. Candidate cuts rise
  from there; at each, the tail is fitted to the scores between the start and the cut
  (truncation accounted for), and the first cut at or above the fitted tail's budget
  point is taken. Anomalies above the normal tail never enter the fit, so a
  contamination of up to about TAIL_SHARE / 2 does not move the threshold; a plain
  percentile lands inside the anomalies as soon as they outnumber the budget. Where the
  real tail is lighter than exponential the fitted cut is conservative, so the
  held-out scores' own percentile caps it: anomalies among them can only raise that
  percentile, so the budget still holds. Where the real tail is heavier than
  exponential the cut exceeds the budget (benchmarks/thresholds.py): on real scores
  whose body is a spike at 0 it fell into the normal scores (one chronological demo
  run: 3.7% false alarms for a 0.5% budget), which is why it is not the default.
- ``knee`` (an ensemble's cut without labels, ``ensemble.threshold``): the knee of the
  held-out sessions' combined scores. Sorted from the top, the scores fall steeply
  through the sessions that stand out and then flatten into the bulk; the knee is
  where the curve is furthest below the chord from its top to the ``KNEE_SHARE``
  quantile (Satopää et al. 2011, "Kneedle"). It presumes no anomaly rate: the share
  above it is the run's estimate of the held-out day's (``flagged_share``). It needs
  a smooth bulk (several detectors' combined scores); on one detector's raw scores
  it was erratic (docs/lab/benchmarks.md), so single detectors keep ``percentile``.
- ``best_f1``: the cut with the best F1 on *labelled* held-out sessions (needs a
  label file); anomalies there are never trained on.
- ``fixed``: ``detection.threshold_value`` as given.

The threshold is never tuned on the days a run reports on. The record of how it
was set travels with the checkpoint and into every report.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np

from radar.errors import ConfigError, RadarError

METHODS = ("tail", "percentile", "best_f1", "fixed")
# Bumped whenever a method's algorithm changes, so a reused model is recalibrated.
CALIBRATION_VERSION = 3
# knee: the top share of the held-out scores the knee is looked for in (at most this
# share is ever flagged), and the fewest sessions that share must hold.
KNEE_SHARE = 0.2
KNEE_MIN_SESSIONS = 50
KNEE_FENCE = 2.0
# What thresholds are set on, for reports, unless the caller says more.
HELD_OUT = "sessions of the training days held out from training"
# Share of the held-out scores above the tail's start; candidate cuts scanned above it.
TAIL_SHARE = 0.2
TAIL_CANDIDATES = 400
MAX_TAIL_SAMPLE = 200_000


@dataclass
class Calibration:
    method: str                 # one of METHODS
    threshold: float
    percentile: float | None
    n_sessions: int
    data: str                   # what the scores came from, for reports
    score_name: str
    f1: float | None = None     # best_f1: F1 reached on the calibration set
    warning: str | None = None  # what makes this threshold behave unlike its method says
    # Share of the calibration sessions above the threshold: with ``tail``, beyond the
    # budget this is the estimated share of anomalies among them.
    flagged_share: float | None = None
    version: int = CALIBRATION_VERSION   # of the algorithm that set it (0: before versions)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{"version": 0, **{key: value for key, value in data.items()
                                      if key in known}})

    def describe(self) -> str:
        """One line for logs and reports: value, method and the data behind it."""
        if self.method == "percentile":
            how = f"p{self.percentile:g} of"
        elif self.method == "tail":
            how = (f"a {100 - self.percentile:g}% false-alarm budget on the exponential tail "
                   f"fitted to")
        elif self.method == "best_f1":
            how = f"best F1 ({self.f1:.3f}) on"
        elif self.method == "knee":
            how = (f"the knee of the top {KNEE_SHARE:.0%} of the scores "
                   f"({self.flagged_share:.2%} above it) of")
        else:
            return f"threshold {self.threshold:.4g} = {self.method} ({self.data})"
        line = f"threshold {self.threshold:.4g} = {how} {self.n_sessions} {self.data}"
        return f"{line}. Warning: {self.warning}" if self.warning else line


def _finite(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return scores[np.isfinite(scores)]


def _need(scores: np.ndarray, what: str) -> None:
    if scores.size == 0:
        raise RadarError(f"no {what} to calibrate the threshold on; the training days must "
                         "hold sessions held out from training (data.calibration_fraction), "
                         "or pass --threshold")


def percentile_threshold(normal_scores: np.ndarray, percentile: float, *, data: str,
                         score_name: str) -> Calibration:
    """Threshold at ``percentile`` of ``normal_scores``; a session must score above it."""
    scores = _finite(normal_scores)
    _need(scores, "normal sessions")
    value = float(np.percentile(scores, percentile, method="higher"))
    return Calibration("percentile", value, percentile, int(scores.size), data, score_name,
                       warning=_warnings(scores, value, percentile))


def _truncated_exponential_scale(excess: np.ndarray, limit: float) -> float:
    """MLE of an exponential scale from excesses observed only below ``limit``."""
    mean = float(excess.mean())
    if not np.isfinite(limit):
        return mean
    if mean >= limit / 2:      # no decay inside the window: as flat as it can be
        return float(limit)

    def truncated_mean(scale: float) -> float:
        ratio = limit / scale
        return scale if ratio > 700 else scale - limit / np.expm1(ratio)

    low, high = 1e-12, limit
    while truncated_mean(high) < mean:
        high *= 2
    for _ in range(100):                       # bisection in log space
        mid = float(np.sqrt(low * high))
        low, high = (mid, high) if truncated_mean(mid) < mean else (low, mid)
    return float(np.sqrt(low * high))


def _tail_prediction(s: np.ndarray, start: float, cut: float, budget: float) -> float:
    """Fit an exponential to the sorted scores ``s`` in (start, cut] (truncation at the
    cut accounted for) and say where it leaves ``budget`` of the scores up to the cut."""
    kept = s[:np.searchsorted(s, cut, side="right")]
    excess = kept[kept > start] - start
    share = excess.size / kept.size
    if excess.size < 10 or share <= budget:
        return float(cut) if share <= budget else float("inf")
    scale = _truncated_exponential_scale(excess, cut - start)
    return float(start + scale * np.log(share / budget))


def tail_cut(scores: np.ndarray, budget: float) -> float:
    """The lowest self-consistent cut (see the module doc): the tail starts at the
    (1 - TAIL_SHARE) quantile of all scores, which a contaminating minority cannot move
    far; candidate cuts rise from there, and the first whose exponential fit on (start,
    cut] puts the budget's cut at or below it is the answer."""
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size > MAX_TAIL_SAMPLE:         # quantiles stand in for a huge sample
        s = np.quantile(s, np.linspace(0.0, 1.0, MAX_TAIL_SAMPLE))
    start = float(np.quantile(s, 1.0 - TAIL_SHARE))
    if np.count_nonzero(s > start) < 10:    # too few distinct high scores to fit a tail
        return float(np.quantile(s, 1.0 - budget, method="higher"))
    candidates = np.unique(np.quantile(s, np.linspace(1.0 - TAIL_SHARE / 2, 1.0,
                                                      TAIL_CANDIDATES)))
    prediction = float(s.max())
    for cut in candidates:
        prediction = _tail_prediction(s, start, float(cut), budget)
        if prediction <= cut:
            return prediction
    return min(prediction, float(s.max()))


def tail_threshold(scores: np.ndarray, percentile: float, *, data: str, score_name: str
                   ) -> Calibration:
    """The ``tail`` method: a budget of ``100 - percentile`` % false alarms on normal
    sessions, on held-out sessions that may include anomalies."""
    scores = _finite(scores)
    _need(scores, "held-out sessions")
    # Anomalies among the scores can only raise their own percentile, so it bounds the
    # cut a normal tail allows; it is lower where the real tail is lighter than the
    # exponential one fitted.
    value = min(tail_cut(scores, (100.0 - percentile) / 100.0),
                float(np.percentile(scores, percentile, method="higher")))
    calibration = Calibration("tail", value, percentile, int(scores.size), data, score_name,
                              warning=_warnings(scores, value, percentile))
    calibration.flagged_share = float(np.mean(scores > value))
    return calibration


def knee_cut(scores: np.ndarray, top_share: float = KNEE_SHARE) -> float:
    """The knee of the top ``top_share`` of ``scores`` sorted from the highest: the score
    where that curve lies furthest below the straight line from its first to its last
    point (scale-free: the line and the curve move together under any affine map)."""
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    top = s[:max(3, int(np.ceil(top_share * s.size)))]
    # A few sessions far above all others would make the chord so steep that the knee
    # lands right below them: the curve is read with scores capped at a fence above the
    # 99th percentile (KNEE_FENCE x its distance from the 90th), which the measured
    # runs' own scores never reached.
    q90, q99 = np.quantile(s, [0.9, 0.99])
    curve = np.minimum(top, q99 + KNEE_FENCE * (q99 - q90))
    if curve[0] <= curve[-1]:               # flat: nothing stands out
        return float(top[0])
    chord = curve[0] + (curve[-1] - curve[0]) * np.arange(top.size) / (top.size - 1)
    return float(top[int(np.argmax(chord - curve))])    # sessions above it are flagged


def knee_threshold(scores: np.ndarray, fallback_percentile: float, *, data: str,
                   score_name: str) -> Calibration:
    """The ``knee`` method on held-out scores that may hold anomalies; with too few
    sessions for a knee, their ``fallback_percentile`` and a warning."""
    scores = _finite(scores)
    _need(scores, "held-out sessions")
    if scores.size * KNEE_SHARE < KNEE_MIN_SESSIONS:
        calibration = percentile_threshold(scores, fallback_percentile, data=data,
                                           score_name=score_name)
        few = (f"only {scores.size:,} held-out sessions, too few for a knee (it needs "
               f"{int(KNEE_MIN_SESSIONS / KNEE_SHARE):,}): the p{fallback_percentile:g} cut "
               "of all of them set the threshold")
        calibration.warning = "; ".join(filter(None, [few, calibration.warning]))
        return calibration
    value = knee_cut(scores)
    calibration = Calibration("knee", value, None, int(scores.size), data, score_name)
    calibration.flagged_share = float(np.mean(scores > value))
    return calibration


# A percentile cut is a rough guess while fewer sessions than this are expected above
# it: with 236 held-out sessions (hdfs_deeplog) a p99.5 cut is the second highest score.
MIN_SESSIONS_ABOVE = 5


def _warnings(scores: np.ndarray, value: float, percentile: float) -> str | None:
    found = [warning for warning in (_few_sessions_warning(scores.size, percentile),
                                     _top_tie_warning(scores, value, percentile)) if warning]
    return "; ".join(found) or None


def _few_sessions_warning(n: int, percentile: float) -> str | None:
    """Say so when too few sessions lie above a percentile for it to be estimated."""
    above = n * (100.0 - percentile) / 100.0
    if above >= MIN_SESSIONS_ABOVE:
        return None
    need = int(np.ceil(MIN_SESSIONS_ABOVE * 100.0 / (100.0 - percentile))) if percentile < 100 \
        else None
    more = f"at least {need:,} held-out sessions" if need else "a percentile below 100"
    return (f"only {n:,} sessions set this p{percentile:g} cut ({above:.1f} expected above "
            "it), so the false-alarm rate it gives on new days may be far from "
            f"{100 - percentile:g}%: it needs {more} (data.calibration_fraction, more "
            "training days) or a lower detection.threshold_percentile")


def _top_tie_warning(scores: np.ndarray, value: float, percentile: float) -> str | None:
    """Say so when the threshold is the highest normal score and more normal sessions tie
    at it than the percentile leaves above. A session must score *above* the threshold,
    so nothing scoring that value (often a score's cap, e.g. every session with an event
    unseen in training) is ever flagged."""
    tied = float(np.mean(scores == value))
    if value < scores.max() or tied <= (100.0 - percentile) / 100.0:
        return None
    return (f"{tied:.1%} of these normal sessions score exactly {value:.4g}, the highest, so "
            "no session scoring that much is flagged. This happens when a score reaches its "
            "cap (say, every session with an event never seen in training): train on more "
            "days, or set the threshold yourself (detection.threshold_method=fixed)")


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(best F1, threshold) over every cut ``score > t`` of these scores."""
    labels = np.asarray(labels).astype(bool)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if not labels.any():
        return 0.0, float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    tp = np.cumsum(sorted_labels)
    fp = np.cumsum(~sorted_labels)
    # A cut can only fall between distinct scores: take the last row of each tie.
    last = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp, fp = tp[last], fp[last]
    f1 = 2 * tp / (tp + fp + labels.sum())
    best = int(np.argmax(f1))
    cut_scores = sorted_scores[last]
    below = cut_scores[best + 1] if best + 1 < cut_scores.size else -np.inf
    return float(f1[best]), cut_between(cut_scores[best], below)


def cut_between(above: float, below: float) -> float:
    """A threshold that flags scores >= ``above`` and none <= ``below`` (``score >
    threshold``): halfway where both are finite; just under ``above`` without a score
    below; the largest float when even ``above`` is infinite."""
    if np.isfinite(below) and np.isfinite(above):
        return float(below + (above - below) / 2)
    if np.isfinite(above):
        return float(np.nextafter(above, -np.inf))
    return float(np.finfo(float).max)


def best_f1_calibration(scores: np.ndarray, labels: np.ndarray, *, data: str, score_name: str
                        ) -> Calibration:
    """The F1-best cut on labelled held-out sessions (labels 1/0; -1 are ignored)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    known = labels >= 0
    if not (labels[known] == 1).any() or not (labels[known] == 0).any():
        raise RadarError("detection.threshold_method=best_f1 needs labelled held-out sessions "
                         "of both kinds; the label file marks none anomalous (or none normal) "
                         "among them. Use threshold_method=percentile, or raise "
                         "data.calibration_fraction")
    f1, threshold = best_f1_threshold(labels[known] == 1, scores[known])
    return Calibration("best_f1", threshold, None, int(known.sum()), data, score_name, f1=f1)


def check_method(method: str, value: float | None, needs_labels: bool) -> None:
    """Fail before training when the chosen method cannot work with this config."""
    if method not in METHODS:
        raise ConfigError(f"detection.threshold_method must be one of {', '.join(METHODS)}; "
                          f"got {method!r}")
    if method == "fixed" and value is None:
        raise ConfigError("detection.threshold_method=fixed needs detection.threshold_value")
    if method == "best_f1" and not needs_labels:
        raise ConfigError("detection.threshold_method=best_f1 needs labels: set "
                          "data.label_file (or --labels FILE)")


def set_threshold(detection, **kwargs) -> Calibration:
    """Apply ``detection.threshold_method`` (see :func:`_set_threshold`); a threshold that
    is not a finite number is an error here, never a run that flags nothing."""
    calibration = _set_threshold(detection, **kwargs)
    if not np.isfinite(calibration.threshold):
        raise RadarError(f"the {calibration.method} threshold came out as "
                         f"{calibration.threshold} on {calibration.n_sessions} sessions; "
                         "check the held-out sessions' scores (radar analyze) or set "
                         "detection.threshold_method=fixed")
    return calibration


def _set_threshold(detection, *, normal_scores: np.ndarray, score_name: str,
                  holdout_scores: np.ndarray | None = None,
                  holdout_labels: np.ndarray | None = None,
                  data: str | None = None) -> Calibration:
    """Apply ``detection.threshold_method`` (a :class:`~radar.config.DetectionConfig`).

    ``normal_scores`` are the held-out *normal* sessions; ``holdout_scores`` /
    ``holdout_labels`` all held-out sessions with their labels (``best_f1`` only);
    ``data`` says what ``normal_scores`` are, for reports.
    """
    method = detection.threshold_method
    data = data or HELD_OUT
    if method == "tail":
        return tail_threshold(normal_scores, detection.threshold_percentile, data=data,
                              score_name=score_name)
    if method == "percentile":
        return percentile_threshold(normal_scores, detection.threshold_percentile,
                                    data=data, score_name=score_name)
    if method == "best_f1":
        if holdout_scores is None or holdout_labels is None:
            raise RadarError("detection.threshold_method=best_f1 needs labels: set "
                             "data.label_file (or --labels FILE)")
        known = np.asarray(holdout_labels)
        if not ((known == 1).any() and (known == 0).any()):
            fallback = percentile_threshold(normal_scores, detection.threshold_percentile,
                                            data=data, score_name=score_name)
            fallback.warning = (
                f"best_f1 found {int((known == 1).sum())} anomalous and "
                f"{int((known == 0).sum())} normal labelled sessions among the held-out "
                "ones (it needs both), so the percentile method set this threshold. Labels of "
                "the days a run reports on never set its threshold: reviewed sessions "
                "count once their day is a training day (the newest training day is the "
                "held-out one)")
            return fallback
        return best_f1_calibration(
            holdout_scores, holdout_labels, score_name=score_name,
            data="labelled sessions of the training days held out from training")
    if method == "fixed":
        return Calibration("fixed", float(detection.threshold_value), None, 0,
                           "detection.threshold_value", score_name)
    raise ConfigError(f"detection.threshold_method must be one of {', '.join(METHODS)}; "
                      f"got {method!r}")
