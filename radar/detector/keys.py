"""Per-target statistics of key-prediction detectors: rank, NLL, session scores, explanations.

LogBERT (masked keys) and the next-key detectors (DeepLog, LogLSTM, LogTCN) all end
up with the same thing: for every target position of a session, the logits over
the vocabulary. From there the arithmetic is shared, so it lives here once:

* :func:`rank_and_nll`: the true key's rank (1 = top prediction) and its NLL;
* :func:`key_scores`: the per-session scores (``max_excess_nll``, ``max_nll``,
  ``mean_nll``, ``miss_ratio``, ``miss_count``), unseen (UNK) events at MAX_NLL;
* :func:`explain_targets`: the most surprising targets as the plain dicts
  :class:`radar.detector.SessionScores` documents.

Tensors are laid out as ``(B, T)`` with the session's events at positions
``1 .. n`` (position 0 holds CLS) and, where the end is a target, SEP at ``n + 1``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from radar.data.vocab import CLS, MASK, PAD, SEP, UNK, EventVocab
from radar.detector.baseline import MAX_NLL

KEY_SCORES = ("max_excess_nll", "max_nll", "mean_nll", "miss_ratio", "miss_count")
_KINDS = {UNK: "unseen", SEP: "end"}


class KeyScoreSettings:
    """The Detector properties every key-prediction detector takes from its config section
    (``score``: which of :data:`KEY_SCORES` is the anomaly score; ``explain_top_k``)."""

    @property
    def score_name(self) -> str:
        return self.config.score

    @property
    def explain_top_k(self) -> int:
        return self.config.explain_top_k


def per_session_mean(values: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (one per True entry of ``positions``, row-major) per row of the
    (B, T) mask ``positions``; rows without a position get 0."""
    rows = positions.nonzero()[:, 0]
    total = torch.zeros(positions.shape[0], dtype=values.dtype, device=values.device)
    total.index_add_(0, rows, values)
    return total / positions.sum(dim=1).clamp(min=1).to(values.dtype)


def rule_out_specials(logits: torch.Tensor) -> torch.Tensor:
    """PAD, CLS and MASK are never targets; SEP (the session end) and UNK may be."""
    logits = logits.clone()
    logits[..., [PAD, CLS, MASK]] = float("-inf")
    return logits


def rank_and_nll(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank (1 = top prediction) and NLL (capped at MAX_NLL) of ``target`` under ``logits``.

    :param logits: (N, V) raw logits; specials are ruled out here.
    :param target: (N,) target indices.
    """
    logits = rule_out_specials(logits.float())
    true_logit = logits.gather(1, target[:, None])
    rank = 1 + (logits > true_logit).sum(dim=1)
    nll = (torch.logsumexp(logits, dim=1) - true_logit[:, 0]).clamp(max=MAX_NLL)
    return rank, nll


# Sessions whose worst position reaches the NLL cap (an unseen event, or one the model
# gives ~1e-8) would all tie at MAX_NLL, and a threshold on the cap can flag none of
# them. Among those sessions the score rises by CAP_TIE_STEP for every further capped
# position and by up to CAP_TIE_STEP with the mean excess NLL of the session, so more
# and worse surprises rank higher. Sessions below the cap are untouched.
CAP_TIE_STEP = 0.01


def break_cap_ties(excess: torch.Tensor, n_targets: torch.Tensor
                   ) -> torch.Tensor:
    """``max_excess_nll`` per session, with ties at the cap broken (see CAP_TIE_STEP)."""
    worst = excess.amax(dim=1)
    capped = excess >= MAX_NLL - 1e-4
    at_cap = capped.any(dim=1)
    tie = (capped.sum(dim=1).float() - 1).clamp(min=0) + excess.sum(dim=1) / n_targets / MAX_NLL
    return torch.where(at_cap, worst + CAP_TIE_STEP * tie, worst)


def key_scores(ids: torch.Tensor, targets: torch.Tensor, rank: torch.Tensor,
               nll: torch.Tensor, baseline: torch.Tensor, top_g: int
               ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-session scores from per-position ranks and NLLs.

    :param ids: (B, T) the indices at each position (the targets' true keys).
    :param targets: (B, T) bool, the positions that were predicted.
    :param rank: (B, T) rank of the true key (ignored off target).
    :param nll: (B, T) NLL of the true key (ignored off target).
    :param baseline: (V,) each index's typical NLL in normal sessions
        (:class:`radar.detector.baseline.NLLBaseline`; zeros = raw NLL).
    :param top_g: a target is a *miss* when its rank is above ``top_g``.
    :returns: ``(scores, nll)``: the :data:`KEY_SCORES` each of shape (B,), and the
        NLL with unseen events raised to MAX_NLL (what explanations rank by).
    """
    unseen = targets & (ids == UNK)
    nll = torch.where(unseen, torch.full_like(nll, MAX_NLL), nll)
    miss = (unseen | (rank > top_g)) & targets
    n_targets = targets.sum(dim=1).clamp(min=1).float()
    excess = (nll - baseline[ids]).clamp(min=0.0).masked_fill(~targets, 0.0)
    misses = miss.sum(dim=1).float()
    scores = {
        "max_excess_nll": break_cap_ties(excess, n_targets),
        "max_nll": nll.masked_fill(~targets, 0.0).amax(dim=1),
        "mean_nll": (nll * targets).sum(dim=1) / n_targets,
        "miss_ratio": misses / n_targets,
        "miss_count": misses,
    }
    return scores, nll


def explain_targets(ids: torch.Tensor, targets: torch.Tensor, rank: torch.Tensor,
                    nll: torch.Tensor, k: int, vocab: EventVocab | None
                    ) -> list[list[dict[str, Any]]] | None:
    """The ``k`` highest-NLL targets of each session, as plain dicts.

    ``position`` is the index within the session (position ``p`` of the layout is
    event ``p - 1``; for the end it is the session length). ``kind`` is
    ``"event"``, ``"unseen"`` (missing from the training vocabulary; no raw id
    survives) or ``"end"`` (the session ended where the model expected more).
    """
    k = min(k, ids.shape[1])
    if k <= 0:
        return None
    # A stable sort, not topk: equal NLLs (every unseen event has the same) keep position
    # order, so the explanation does not depend on which sessions share the batch.
    ranked = torch.sort(nll.masked_fill(~targets, -1.0), dim=1, descending=True, stable=True)
    top_nll, top_pos = ranked.values[:, :k], ranked.indices[:, :k]
    top_ids = ids.gather(1, top_pos).cpu().numpy()
    top_rank = rank.gather(1, top_pos).cpu().tolist()
    positions = top_pos.cpu().tolist()
    raw = vocab.decode(top_ids).tolist() if vocab is not None else top_ids.tolist()
    explanations = []
    for row, nll_row in enumerate(top_nll.cpu().tolist()):
        items = []
        for j, value in enumerate(nll_row):
            if value < 0:   # the session has fewer than k targets
                break
            kind = _KINDS.get(int(top_ids[row, j]), "event")
            items.append({
                "position": positions[row][j] - 1,
                "event_id": int(raw[row][j]) if kind == "event" else None,
                "kind": kind,
                "rank": None if kind == "unseen" else int(top_rank[row][j]),
                "probability": 0.0 if kind == "unseen" else math.exp(-value),
            })
        explanations.append(items)
    return explanations
