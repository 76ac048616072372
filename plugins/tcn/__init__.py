"""LogTCN detector plugin: registers :class:`~radar_plugins.tcn.detector.LogTCN`.

The detector module (and with it torch) is imported only when detectors are
collected, so ``radar plugins`` and CLI start-up stay fast.
"""

from __future__ import annotations

from radar import hookimpl


@hookimpl
def register_detectors(register):
    """Register the ``tcn`` detector."""
    from .detector import LogTCN

    register(LogTCN)
