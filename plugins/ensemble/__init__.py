"""Built-in ensemble scorers: combiners (mean, max, weighted_mean, rank_average, vote)
and the service-weighted severity scorer. Registered through the ``radar`` entry-point
group like any third-party scorer package."""

from __future__ import annotations

from radar import hookimpl


@hookimpl
def register_scorers(register):
    """Register the built-in combiners and the severity scorer."""
    from .combiners import COMBINERS
    from .severity import ServiceWeightedSeverity

    for scorer in COMBINERS:
        register(scorer)
    register(ServiceWeightedSeverity)
