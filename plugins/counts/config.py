"""The ``models.pca`` config section, validated when it is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from radar import ConfigError, SectionChecks

WEIGHTINGS = ("tfidf", "none")


@dataclass
class PCAConfig(SectionChecks):
    """PCA residual of event-count vectors (Xu, Huang, Fox, Patterson and Jordan, SOSP 2009).

    The normal subspace is spanned by the leading principal components that explain
    ``variance`` of the training vectors' variance; a session scores the squared length
    of its vector's residual outside that subspace (the squared prediction error, SPE).
    """

    section: ClassVar[str] = "models.pca"

    # Share of the variance the normal subspace keeps (Xu et al.: 0.95).
    variance: float = 0.95
    # tfidf: each event's count weighted by log((1 + N) / (1 + sessions holding it)) + 1,
    # so an event every session has weighs less than a rare one | none: raw counts.
    weighting: str = "tfidf"
    # How many of the largest residual events each explanation names (0: none).
    explain_top_k: int = 3

    def __post_init__(self) -> None:
        self.check_number("variance", above=0, below=1)
        self.check_number("explain_top_k", minimum=0)
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"{self.section}.weighting must be one of "
                              f"{', '.join(WEIGHTINGS)}, got {self.weighting!r}")
