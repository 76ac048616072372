"""LogBERT detector plugin: registers :class:`~radar_plugins.logbert.detector.LogBERT`.

The detector module (and with it torch and transformers) is imported only when
detectors are collected, so ``radar plugins`` and CLI start-up stay fast.
"""

from __future__ import annotations

from radar import hookimpl


@hookimpl
def register_detectors(register):
    """Register the ``logbert`` detector."""
    from .detector import LogBERT

    register(LogBERT)
