"""What the built-in plugins' own tests (plugins/*/tests) import, now from radar.testing.

The helpers moved into the installed kit, where a third-party plugin's tests reach them
too; this module only keeps the old import path of plugins/*/tests working. New tests
import from ``radar.testing`` directly.
"""

from __future__ import annotations

from radar.testing import (
    BLOCKS,
    assert_batch_independent,
    assert_registered_lazily,
    build_small,
    make_batch,
    normal_session,
    train_and_score_planted,
)

__all__ = ["BLOCKS", "assert_batch_independent", "assert_registered_lazily", "build_small",
           "make_batch", "normal_session", "train_and_score_planted"]
