"""The default severity scorer: margin over the threshold, weighted by service.

For a session flagged by the ensemble (combined score above the threshold) the
margin is ``score - threshold``; on the default ecdf scale one unit is ten times
rarer among normal sessions. The margin is multiplied by the service's weight
(``severity.service_weights``; a gateway outage hurts more than a research job)
and graded by ``severity.levels`` (the smallest weighted margin of LOW, MEDIUM,
HIGH and CRITICAL). ERROR / WARN lines then raise the level by
``severity.error_raise`` / ``warn_raise`` steps — for every session, so one with
ERROR lines that the detectors find ordinary still shows up (as LOW by default)
for a person to look at. Each session lists the reasons behind its level.
"""

from __future__ import annotations

import numpy as np

from radar import LEVELS, ConfigError, SeverityResult, SeverityScorer

DEFAULT_LEVELS = {"LOW": 0.0, "MEDIUM": 1.0, "HIGH": 2.0, "CRITICAL": 3.0}


class ServiceWeightedSeverity(SeverityScorer):
    name = "service_weighted"
    description = "margin over the threshold x service weight, raised by ERROR/WARN"

    def _settings(self) -> tuple[np.ndarray, dict, float, int, int]:
        c = self.config
        levels = dict(DEFAULT_LEVELS)
        levels.update(c.levels or {})
        unknown = sorted(set(levels) - set(LEVELS[1:]))
        if unknown:
            raise ConfigError(f"severity.levels: unknown level {unknown[0]!r}; the levels are "
                              f"{', '.join(LEVELS[1:])}")
        cuts = np.array([float(levels[name]) for name in LEVELS[1:]])
        if (np.diff(cuts) < 0).any() or cuts[0] < 0:
            raise ConfigError("severity.levels must be >= 0 and rise from LOW to CRITICAL, "
                              f"got {levels}")
        weights = {str(k): float(v) for k, v in (c.service_weights or {}).items()}
        if any(w <= 0 for w in weights.values()):
            raise ConfigError("severity.service_weights must be > 0")
        return cuts, weights, float(c.default_weight), int(c.error_raise), int(c.warn_raise)

    def assess(self, score: np.ndarray, threshold: float, services: list[str],
               service: np.ndarray, has_error: np.ndarray, has_warn: np.ndarray
               ) -> SeverityResult:
        """Levels for sessions whose service is ``services[service[i]]``."""
        cuts, weights, default, error_raise, warn_raise = self._settings()
        score = np.asarray(score, dtype=np.float64)
        w_by_service = np.array([weights.get(name, default) for name in services])
        weight = w_by_service[np.asarray(service)] if len(services) else np.ones(score.size)
        margin = score - threshold
        flagged = margin > 0
        value = np.where(flagged, margin * weight, 0.0)
        level = np.where(flagged, 1 + (value[:, None] >= cuts[None, 1:]).sum(axis=1), 0)
        raised = level + error_raise * has_error + warn_raise * (has_warn & ~has_error)
        final = np.clip(raised, 0, len(LEVELS) - 1).astype(np.int8)
        reasons = []
        for i in range(score.size):
            why = []
            if flagged[i]:
                why.append(f"score {score[i]:.3g} is {margin[i]:.3g} above the threshold "
                           f"{threshold:.3g}")
                if weight[i] != 1.0:
                    why.append(f"service {services[service[i]]} weighs {weight[i]:g}")
            if has_error[i] and error_raise:
                why.append(f"ERROR lines: raised {error_raise} level(s)")
            elif has_warn[i] and warn_raise:
                why.append(f"WARN lines: raised {warn_raise} level(s)")
            reasons.append(why)
        return SeverityResult(final, value, reasons)
