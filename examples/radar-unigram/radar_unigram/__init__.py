"""radar-unigram: a third-party RADAR detector plugin (``--detector unigram``).

RADAR loads this module through the ``radar`` entry-point group (see
``pyproject.toml``) and calls the hooks below. The detector module, and with it
torch, is imported only when RADAR collects detectors, so ``radar plugins`` and
the CLI start fast.
"""

from __future__ import annotations

from radar import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_detectors(register):
    """Register the ``unigram`` detector."""
    from radar_unigram.detector import Unigram

    register(Unigram)
