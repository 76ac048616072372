"""One day's traffic: which sessions run when, which carry an anomaly, and a release."""

from __future__ import annotations

import random
from dataclasses import dataclass

from radar.data.synth.anomalies import ANOMALY_KINDS, inject
from radar.data.synth.services import SystemModel
from radar.data.synth.templates import RELEASE_KEY


@dataclass
class Session:
    """One session before rendering: its template keys and, if anomalous, the kind."""
    start_ms: int
    service: str
    keys: list[str]
    kind: str           # "" for normal sessions


def _start_ms(rng: random.Random) -> int:
    """Most traffic in working hours (KST), a floor of background jobs around the clock."""
    hours = rng.gauss(14, 3) if rng.random() < 0.7 else rng.uniform(0, 24)
    return int(min(23.5, max(0.0, hours)) * 3_600_000) + rng.randint(0, 999)


def draw_sessions(model: SystemModel, rng: random.Random, n: int, anomaly_rate: float
                  ) -> list[Session]:
    """``n`` sessions of one day in start order; each is an anomaly with probability
    ``anomaly_rate`` (the first of the shuffled kinds that applies to it)."""
    sessions = []
    for _ in range(n):
        service = rng.choices(model.services, model.service_weights)[0]
        events = model.normal_session(rng, service)
        keys, kind = [key for key, _ in events], ""
        if rng.random() < anomaly_rate:
            for candidate in rng.sample(ANOMALY_KINDS, len(ANOMALY_KINDS)):
                injected = inject(candidate, rng, events, service, model)
                if injected is not None:
                    keys, kind = injected, candidate
                    break
        sessions.append(Session(_start_ms(rng), service, keys, kind))
    sessions.sort(key=lambda s: s.start_ms)
    return sessions


def add_release(sessions: list[Session], rng: random.Random, share: float) -> None:
    """A release at midday: from then on, sessions log the new line (RELEASE_KEY) at a
    random place, as many as ``share`` of the whole day; their labels do not change."""
    later = [s for s in sessions if s.start_ms >= 12 * 3_600_000]
    for session in rng.sample(later, min(len(later), round(share * len(sessions)))):
        session.keys.insert(rng.randint(0, len(session.keys)), RELEASE_KEY)
