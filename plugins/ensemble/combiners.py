"""Ways to combine detectors' normalised scores (see :mod:`radar.scoring.normalize`).

On the default ``ecdf`` scale a column reads "-log10 of the share of normal
sessions that score this high", so the rules below compare like with like.
"""

from __future__ import annotations

import numpy as np

from radar import Combiner, ConfigError


class MeanScorer(Combiner):
    name = "mean"
    description = "mean of the normalised detector scores"

    def reduce(self, normalized, raw):
        return normalized.mean(axis=1)


class MaxScorer(Combiner):
    name = "max"
    description = "largest normalised detector score (any detector alarmed)"

    def reduce(self, normalized, raw):
        return normalized.max(axis=1)


class WeightedMeanScorer(Combiner):
    name = "weighted_mean"
    description = "weighted mean of normalised scores (ensemble.weights, default 1 each)"

    def reduce(self, normalized, raw):
        weights = dict(self.config.weights)
        unknown = sorted(set(weights) - set(self.detectors_))
        if unknown:
            raise ConfigError(f"ensemble.weights names {', '.join(unknown)}, which is not in "
                              f"detectors ({', '.join(self.detectors_)})")
        w = np.array([float(weights.get(name, 1.0)) for name in self.detectors_])
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError("ensemble.weights must be >= 0 and not all 0")
        return normalized @ (w / w.sum())


class RankAverageScorer(Combiner):
    """Mean of each detector's percentile among the normal sessions (0..1).

    Uses the ecdf normaliser's share whatever ``ensemble.normalize`` says, since
    a rank is what it averages; ties beyond every normal session are broken by
    the mean normalised score, scaled to stay below one rank step.
    """

    name = "rank_average"
    description = "mean percentile rank among normal sessions"

    def fit(self, normal_scores, detectors, thresholds=None, normalize="ecdf"):
        return super().fit(normal_scores, detectors, thresholds, "ecdf")

    def reduce(self, normalized, raw):
        ranks = 1.0 - np.power(10.0, -normalized)          # back from -log10 p to 1 - p
        return ranks.mean(axis=1) + 1e-6 * np.tanh(normalized.mean(axis=1) / 100.0)


class VoteScorer(Combiner):
    """Share of detectors whose own calibrated threshold flags the session.

    A session is anomalous when more than half vote for it (threshold 0.5). A
    small term from the mean normalised score orders sessions with equal votes,
    so ROC and PR curves stay meaningful; it never changes a decision.
    """

    name = "vote"
    description = "majority vote of the detectors' own decisions"
    fixed_threshold = 0.5

    def reduce(self, normalized, raw):
        if self.thresholds_ is None:
            raise ConfigError("the vote combiner needs each detector's calibrated threshold")
        votes = (raw > np.asarray(self.thresholds_)[None, :]).mean(axis=1)
        # Shifted down by its maximum, the tie-break stays within (-0.4/d, 0]: below
        # one vote step, so "> 0.5" is decided by the votes alone.
        step = 0.4 / max(len(self.detectors_), 1)
        tie_break = step * (0.5 + np.arctan(normalized.mean(axis=1)) / np.pi)
        return votes - step + tie_break

COMBINERS = (MeanScorer, MaxScorer, WeightedMeanScorer, RankAverageScorer, VoteScorer)
