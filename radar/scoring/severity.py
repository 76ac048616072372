"""The severity contract: a calibrated score becomes NORMAL .. CRITICAL, with reasons.

A severity scorer (a :class:`SeverityScorer` subclass, ``severity.scorer``) stores
its typed config (:class:`~radar.config.SeverityConfig`) and implements
:meth:`SeverityScorer.assess`: it gets every session's score, the threshold in use,
its service and its ERROR/WARN flags, and returns a level index into :data:`LEVELS`
plus a list of plain-language reasons per session. The levels are fixed so reports
and dashboards can rely on them; how a score maps to them is the scorer's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from radar.config import SeverityConfig
from radar.results import LEVELS  # the levels a result record may carry


@dataclass
class SeverityResult:
    level: np.ndarray               # (n,) int8 index into LEVELS
    value: np.ndarray               # (n,) float: the weighted margin the level came from
    reasons: list[list[str]]        # per session, why it got its level

    def names(self) -> list[str]:
        return [LEVELS[i] for i in self.level]


class SeverityScorer:
    """Base class for severity scorer plugins."""

    scorer_kind: ClassVar[str] = "severity"      # how the plugin manager tells scorers apart
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, config: SeverityConfig | None = None):
        self.config = config if config is not None else SeverityConfig()

    def assess(self, score: np.ndarray, threshold: float, services: list[str],
               service: np.ndarray, has_error: np.ndarray, has_warn: np.ndarray
               ) -> SeverityResult:
        """Levels and reasons for sessions whose service is ``services[service[i]]``."""
        raise NotImplementedError


def level_counts(level: np.ndarray, groups: np.ndarray, names: list[str]) -> dict[str, dict]:
    """{group name: {LEVEL: count}} for reports (severity per service or per day)."""
    out = {}
    for index, name in enumerate(names):
        rows = groups == index
        if rows.any():
            out[name] = {lvl: int((level[rows] == i).sum()) for i, lvl in enumerate(LEVELS)}
    return out
