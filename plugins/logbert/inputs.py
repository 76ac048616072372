"""Turning a :class:`~radar.detector.SessionBatch` into LogBERT inputs, vectorised.

Adds the CLS (DIST) token and optional SEP, and draws the masks: random BERT
80/10/10 masks for training, and the fixed stride pattern used for scoring.
"""

from __future__ import annotations

import torch

from radar import CLS, FIRST_EVENT, MASK, SEP


def with_specials(input_ids: torch.Tensor, lengths: torch.Tensor, append_sep: bool,
                  predict_end: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prepend CLS (and append SEP after each session's last event).

    :returns: ``(ids, attention_mask, targets)``, each (B, L + specials);
        ``targets`` marks the positions the model learns to predict: every
        event, plus SEP when ``predict_end`` (never CLS or PAD).
    """
    batch, length = input_ids.shape
    extra = 2 if append_sep else 1
    ids = input_ids.new_zeros(batch, length + extra)
    ids[:, 0] = CLS
    ids[:, 1:length + 1] = input_ids
    positions = torch.arange(length + extra, device=input_ids.device)[None, :]
    events = (positions >= 1) & (positions <= lengths[:, None])
    ids = ids.masked_fill(~events & (positions > 0), 0)   # clear stray ids past lengths
    if append_sep:
        ids.scatter_(1, (lengths + 1)[:, None], SEP)
    attention_mask = positions < (lengths + extra)[:, None]
    targets = events | (positions == (lengths + 1)[:, None]) if predict_end else events
    return ids, attention_mask, targets


def training_mask(ids: torch.Tensor, targets: torch.Tensor, mask_prob: float,
                  vocab_size: int, generator: torch.Generator | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``mask_prob`` of the target positions (at least one per session), corrupt them.

    Of the chosen positions 80% become MASK, 10% a random event index and 10%
    stay as they are (BERT's recipe, so the model cannot rely on seeing MASK).

    :returns: ``(corrupted_ids, chosen)``; the loss is taken where ``chosen``.
    """
    device, shape = ids.device, ids.shape
    chosen = (torch.rand(shape, generator=generator, device=device) < mask_prob) & targets
    # A session with nothing chosen would contribute nothing; pick one of its targets.
    n_targets = targets.sum(dim=1)
    pick = torch.rand(shape[0], generator=generator, device=device) * n_targets
    pick = 1 + torch.minimum(pick.long(), (n_targets - 1).clamp(min=0))
    forced = torch.zeros_like(chosen).scatter_(1, pick[:, None], True)
    chosen |= forced & ~chosen.any(dim=1, keepdim=True) & targets
    action = torch.rand(shape, generator=generator, device=device)
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(ids, MASK), ids)
    if vocab_size > FIRST_EVENT:   # a vocabulary without events has nothing to swap in
        random_ids = torch.randint(FIRST_EVENT, vocab_size, shape, generator=generator,
                                   device=device)
        swap = chosen & (action >= 0.8) & (action < 0.9)
        corrupted = torch.where(swap, random_ids, corrupted)
    return corrupted, chosen


def scoring_mask(targets: torch.Tensor, passes: int, pass_index: int) -> torch.Tensor:
    """Targets masked in scoring pass ``pass_index``: those at p with (p - 1) % passes == pass_index.

    Depends only on a position's place in its own session, so a session's score
    does not change with the batch it is scored in.
    """
    positions = torch.arange(targets.shape[1], device=targets.device)[None, :]
    return targets & ((positions - 1) % passes == pass_index)
