"""Count-vector detector plugin: ``pca``, the residual of event-count vectors off their
normal subspace (Xu et al. 2009).

An order-blind detector that looks at how often each event occurs in a session, not
in which order: it sees what next-key models miss on interleaved logs (a missing ack, a
repeated step, an unusual mix) and nothing of a reordering. It is *fitted*, not
trained: the shared calibration step hands it a sample of training sessions
(``Detector.fit_scoring``) and it solves for its state in closed form.

The detector module (and with it torch) is imported only when detectors are
collected, so ``radar plugins`` and CLI start-up stay fast.
"""

from __future__ import annotations

from radar import hookimpl


@hookimpl
def register_detectors(register):
    """Register the ``pca`` detector."""
    from .detector import EventCountPCA

    register(EventCountPCA)
