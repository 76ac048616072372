"""Small hand-made data and a toy detector for trainer tests (no LogBERT needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from radar.detector import Detector, SessionScores


def write_day(path: Path, sessions: list[list[int]], *, errors: set[int] = frozenset(),
              services: tuple[str, ...] = ("gateway", "research")) -> Path:
    """Write a day file in the user's format from event sequences."""
    records = []
    for i, events in enumerate(sessions):
        tokens = [101, *events, 102]
        records.append({
            "session_id": i, "event_sequence": events, "token_ids": tokens,
            "attention_mask": [1] * len(tokens), "has_error": i in errors, "has_warn": False,
            "service_name": services[i % len(services)],
            "original_logs": [f"line {e}" for e in events]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def pattern_sessions(n: int, seed: int = 0, max_len: int = 12) -> list[list[int]]:
    """Sessions of a repeating 1..6 cycle with random start and length."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        start, length = int(rng.integers(0, 6)), int(rng.integers(3, max_len + 1))
        out.append([1 + (start + j) % 6 for j in range(length)])
    return out


class ToyModel(torch.nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.out = torch.nn.Linear(8, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.embed(ids)))


class ToyDetector(Detector):
    """Next-event prediction; loss is a mean of per-session means (deterministic).

    With ``noisy=True`` the loss also drops random positions through torch's RNG,
    so resuming must restore RNG state to reproduce it.
    """

    name = "toy"

    def __init__(self, config=None, noisy: bool = False):
        super().__init__(config)
        self.noisy = noisy

    def build_model(self, vocab, window):
        return ToyModel(len(vocab))

    def _per_session(self, model, batch) -> torch.Tensor:
        ids = batch.input_ids
        logits = model(ids[:, :-1])
        target = ids[:, 1:]
        valid = (batch.attention_mask[:, 1:]).float()
        if self.noisy:
            valid = valid * (torch.rand(valid.shape) > 0.3).float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        return (nll * valid).sum(1) / valid.sum(1).clamp(min=1)

    def training_loss(self, model, batch):
        return self._per_session(model, batch).mean()

    def score_sessions(self, model, batch):
        with torch.no_grad():
            noisy, self.noisy = self.noisy, False
            score = self._per_session(model, batch)
            self.noisy = noisy
        return SessionScores(score=score)
