"""The ``models.unigram`` config section, validated when it is built.

RADAR builds it from the run config's ``models.unigram`` mapping (or ``model:``
when unigram is the first detector): unknown keys and wrong types are rejected
by RADAR before ``__post_init__`` runs the range checks below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from radar import ConfigError, SectionChecks

SCORES = ("max_nll", "mean_nll")


@dataclass
class UnigramConfig(SectionChecks):
    """Which per-session score decides, and how many positions explain it."""

    section: ClassVar[str] = "models.unigram"

    # max_nll: the session's rarest event (one odd event is enough); mean_nll: how
    # unusual its events are on average. The other one is kept in the results.
    score: str = "max_nll"
    # How many of the rarest positions each session's explanation lists (0: none).
    explain_top_k: int = 3

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"{self.section}.score must be one of {', '.join(SCORES)}, "
                              f"got {self.score!r}")
        self.check_number("explain_top_k", minimum=0)
