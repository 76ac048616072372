"""Length-bucketed batches, and the token cap of scoring batches."""

from __future__ import annotations

import numpy as np
import pytest

from radar.data.sampling import BucketBatchSampler


def _batches(lengths, size, max_tokens=None):
    return list(BucketBatchSampler(np.asarray(lengths), size, shuffle=False,
                                   max_tokens=max_tokens))


def test_token_cap_splits_only_the_long_batches():
    rng = np.random.default_rng(0)
    lengths = np.r_[rng.integers(1, 30, 500), rng.integers(300, 510, 40)]
    capped = _batches(lengths, 128, max_tokens=128 * 64)
    every = np.concatenate(capped)
    assert np.array_equal(np.sort(every), np.arange(lengths.size))     # each item once
    assert np.all(np.diff(lengths[every]) >= 0)                         # still length-sorted
    for batch in capped:
        assert len(batch) <= 128
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 128 * 64
    # Batches of short windows are the uncapped ones; long windows go 16 or fewer a batch.
    plain = _batches(lengths, 128)
    assert [b.tolist() for b in capped[:3]] == [b.tolist() for b in plain[:3]]
    assert max(len(b) for b in capped if lengths[b].max() >= 300) <= 27


def test_a_window_longer_than_the_cap_is_a_batch_of_its_own():
    batches = _batches([5, 900, 1000], 8, max_tokens=100)
    assert [b.tolist() for b in batches] == [[0], [1], [2]]


def test_the_cap_is_for_scoring_batches_only():
    with pytest.raises(ValueError, match="unshuffled"):
        BucketBatchSampler(np.ones(10), 4, shuffle=True, max_tokens=100)
