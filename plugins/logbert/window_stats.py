"""What LogBERT's scoring measures per window, computed once per distinct window.

Scoring masks every target once, in strided passes (:func:`.inputs.scoring_mask`),
and reads each target's rank and NLL while it is masked, plus the CLS (DIST) state's
distance to the hypersphere centre. Three things make that cheap without changing
a number a window gets:

* identical windows in a batch go through the model once (logs repeat: HDFS_100k's
  1,588 test sessions hold 231 distinct event sequences);
* a bounded least-recently-used cache keeps distinct windows' results across
  batches, valid only for the model object and parameter versions that made them;
* the masked variants of all windows go through the model together, in chunks of
  at most the caller's batch size, so no unmasked pass and few small calls.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import torch

from radar import MASK, rank_and_nll

from .inputs import scoring_mask

# The cache holds at most this many positions (rank int64 + NLL float32 + the key's
# int64 ids: 20 bytes each) and this many windows; with each window's two small tensors
# and its key it takes ~116 MB once full (measured on windows of lognormal lengths, mean
# 30 events), a constant a process reaches once it has scored ~70k distinct windows.
CACHE_POSITIONS = 2_000_000
CACHE_WINDOWS = 100_000


@dataclass
class WindowStats:
    """Per window: each target's rank and NLL (0 off target) and the CLS distance."""

    rank: torch.Tensor       # (B, T) int64, 1 = top prediction
    nll: torch.Tensor        # (B, T) float32
    distance: torch.Tensor   # (B,) float32, mean over the window's masked passes


def masked_pass_stats(model: torch.nn.Module, center: torch.Tensor, ids: torch.Tensor,
                      attention: torch.Tensor, targets: torch.Tensor, passes: int,
                      chunk_rows: int) -> WindowStats:
    """Run every window's masked variants (``passes`` of them, fewer for short windows).

    The CLS distance is the mean over a window's variants of its CLS state's distance
    to ``center``: like the training loss (and the reference implementation), it
    measures CLS states of masked inputs.
    """
    variants = [scoring_mask(targets, passes, index) for index in range(passes)]
    owner = torch.cat([torch.nonzero(m.any(dim=1))[:, 0] for m in variants])
    masked = torch.cat([m[m.any(dim=1)] for m in variants])
    stacked_ids = torch.where(masked, torch.full_like(masked, MASK, dtype=ids.dtype),
                              ids[owner])
    stacked_attention = attention[owner]
    rank = torch.zeros(ids.shape, dtype=torch.long, device=ids.device)
    nll = torch.zeros(ids.shape, dtype=torch.float32, device=ids.device)
    distance_sum = torch.zeros(ids.shape[0], dtype=torch.float32, device=ids.device)
    for start in range(0, owner.numel(), max(chunk_rows, 1)):
        part = slice(start, start + max(chunk_rows, 1))
        logits, cls_hidden = model(stacked_ids[part], stacked_attention[part], masked[part])
        rows, cols = torch.nonzero(masked[part], as_tuple=True)
        sessions = owner[part][rows]
        rank[sessions, cols], nll[sessions, cols] = rank_and_nll(logits, ids[sessions, cols])
        distance_sum.index_add_(0, owner[part], (cls_hidden.float() - center).norm(dim=1))
    counts = torch.bincount(owner, minlength=ids.shape[0]).clamp(min=1)
    return WindowStats(rank, nll, distance_sum / counts)


class WindowStatsCache:
    """Bounded LRU of :class:`WindowStats` rows keyed by a window's ids.

    Entries belong to one model state: the model object (held weakly) and the
    version counters of its parameters and buffers, which every in-place update
    (an optimiser step, ``load_state_dict``, a centre refresh) bumps. Any change
    empties the cache, so a cached row is always what the model would compute.
    """

    def __init__(self, max_positions: int = CACHE_POSITIONS, max_windows: int = CACHE_WINDOWS):
        self.max_positions, self.max_windows = max_positions, max_windows
        self._rows: OrderedDict[bytes, tuple[torch.Tensor, torch.Tensor, float]] = OrderedDict()
        self._positions = 0
        self._owner: tuple | None = None
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def _state_of(model: torch.nn.Module) -> tuple:
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device.type if tensors else "cpu"
        return (weakref.ref(model), tuple(t._version for t in tensors), device,
                torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))

    def _bind(self, model: torch.nn.Module) -> None:
        state = self._state_of(model)
        owner = self._owner
        if owner is None or owner[0]() is not model or owner[1:] != state[1:]:
            self._rows.clear()
            self._positions = 0
            self._owner = state

    def lookup(self, model: torch.nn.Module, keys: list[bytes]) -> list[tuple | None]:
        """The cached ``(rank, nll, distance)`` of each key, None where not cached."""
        with self._lock:
            self._bind(model)
            found = []
            for key in keys:
                row = self._rows.get(key)
                if row is not None:
                    self._rows.move_to_end(key)
                found.append(row)
            self.hits += sum(row is not None for row in found)
            self.misses += sum(row is None for row in found)
            return found

    def store(self, key: bytes, rank: torch.Tensor, nll: torch.Tensor, distance: float) -> None:
        """Keep one window's row (trimmed to its length), evicting the oldest rows."""
        with self._lock:
            if self.max_windows <= 0 or key in self._rows:
                return
            self._rows[key] = (rank, nll, distance)
            self._positions += rank.numel()
            while self._rows and (self._positions > self.max_positions
                                  or len(self._rows) > self.max_windows):
                _, (old_rank, _, _) = self._rows.popitem(last=False)
                self._positions -= old_rank.numel()


def window_stats(model: torch.nn.Module, core: torch.nn.Module, ids: torch.Tensor,
                 attention: torch.Tensor, targets: torch.Tensor, passes: int,
                 cache: WindowStatsCache | None) -> WindowStats:
    """:func:`masked_pass_stats` for each distinct window of the batch, through ``cache``.

    ``core`` is the unwrapped LogBERTModel (its centre and its state key the cache);
    ``model`` is what to call (possibly DDP- or compile-wrapped).
    """
    unique, inverse = torch.unique(ids, dim=0, return_inverse=True)
    first = torch.empty(unique.shape[0], dtype=torch.long, device=ids.device)
    first.scatter_(0, inverse, torch.arange(ids.shape[0], device=ids.device))
    unique_attention, unique_targets = attention[first], targets[first]
    lengths = unique_attention.sum(dim=1).cpu().tolist()
    host = unique.cpu()
    keys = [host[row, :length].numpy().tobytes() for row, length in enumerate(lengths)]
    cached = cache.lookup(core, keys) if cache is not None else [None] * len(keys)
    missing = [row for row, hit in enumerate(cached) if hit is None]
    rank = torch.zeros(unique.shape, dtype=torch.long)
    nll = torch.zeros(unique.shape, dtype=torch.float32)
    distance = torch.zeros(unique.shape[0], dtype=torch.float32)
    if missing:
        rows = torch.tensor(missing, device=ids.device)
        fresh = masked_pass_stats(model, core.center_for_loss(), unique[rows],
                                  unique_attention[rows], unique_targets[rows], passes,
                                  chunk_rows=ids.shape[0])
        rank[missing], nll[missing] = fresh.rank.cpu(), fresh.nll.cpu()
        distance[missing] = fresh.distance.cpu()
    for row, hit in enumerate(cached):
        length = lengths[row]
        if hit is not None:
            rank[row, :length], nll[row, :length], distance[row] = hit
        elif cache is not None:
            cache.store(keys[row], rank[row, :length].clone(), nll[row, :length].clone(),
                        float(distance[row]))
    device = ids.device
    return WindowStats(rank.to(device)[inverse], nll.to(device)[inverse],
                       distance.to(device)[inverse])
