"""Length-bucketed batch sampling: batches of similar length so padding waste stays small.

Order is a pure function of (seed, epoch), so a resumed run can skip exactly the
batches it already trained on. Under DDP the sampler forms *global* batches of
``batch_size * world_size`` items and each rank takes every ``world_size``-th item
of each, so N ranks see exactly the sessions one process would see with an
N-times larger batch.

Unshuffled (scoring) batches may also be capped in tokens (``max_tokens``: windows x
the longest window's length), so a batch of the longest sessions holds fewer windows
than a batch of ordinary ones and the peak memory of scoring stays that of the cap,
however many long sessions a corpus holds.
"""

from __future__ import annotations

import numpy as np


class BucketBatchSampler:
    """Yields arrays of item indices; shuffled, grouped by length, deterministic per epoch.

    Items are shuffled, cut into pools of ``batch_size * pool_batches``, each pool
    sorted by length and cut into batches; batch order is then shuffled again so
    an epoch does not run from short to long.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, pool_batches: int = 64, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, max_tokens: int | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if max_tokens is not None and shuffle:
            raise ValueError("max_tokens caps unshuffled (scoring) batches only")
        self.max_tokens = max_tokens
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.pool_batches, self.rank, self.world_size = pool_batches, rank, world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0          # batches of this epoch to skip (resume)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _global_batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        size = self.batch_size * self.world_size
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            batches = (_token_capped(order, self.lengths[order], size, self.max_tokens)
                       if self.max_tokens else [order[i:i + size] for i in range(0, n, size)])
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(n)
            pool = size * self.pool_batches
            batches = []
            for start in range(0, n, pool):
                chunk = order[start:start + pool]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                batches.extend(chunk[i:i + size] for i in range(0, len(chunk), size))
            batches = [batches[i] for i in rng.permutation(len(batches))]
        # A batch too small to give every rank an item (or partial, with drop_last) goes.
        minimum = size if self.drop_last else self.world_size
        return [batch for batch in batches if len(batch) >= minimum]

    def _rank_batches(self) -> list[np.ndarray]:
        return [batch[self.rank::self.world_size] for batch in self._global_batches()]

    def __len__(self) -> int:
        return len(self._rank_batches())

    def __iter__(self):
        yield from self._rank_batches()[self.skip:]


def _token_capped(order: np.ndarray, sorted_lengths: np.ndarray, size: int, max_tokens: int
                  ) -> list[np.ndarray]:
    """``order`` (ascending by length) cut into batches of at most ``size`` items and
    at most ``max_tokens`` items x the batch's longest length (at least one item)."""
    lengths = np.maximum(sorted_lengths, 1)
    batches, start, n = [], 0, order.size
    while start < n:
        stop = min(start + size, n)
        # Longest item last: the batch fits while (count) x lengths[last] <= max_tokens.
        counts = np.arange(1, stop - start + 1)
        count = int((counts * lengths[start:stop] <= max_tokens).sum()) or 1
        batches.append(order[start:start + count])
        start += count
    return batches
