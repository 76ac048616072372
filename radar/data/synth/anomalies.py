"""Anomaly injection: one normal session's events turned into an anomaly of a given kind."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from radar.data.synth.services import SystemModel
from radar.data.synth.templates import NOISE_KEYS, TEMPLATES

ANOMALY_KINDS = ("unseen_event", "missing_step", "out_of_order", "repetition_burst",
                 "truncated", "cross_service", "error_cascade")

_ANOMALY_KEYS = [t.key for t in TEMPLATES.values() if t.service == "anomaly"]


def inject(kind: str, rng: random.Random, events: list[tuple[str, bool]], service: str,
           model: SystemModel) -> list[str] | None:
    """The session's keys with one anomaly of ``kind``, or None where it does not apply."""
    keys = [key for key, _ in events]
    counts = Counter(keys)
    required = [i for i, (key, req) in enumerate(events) if req and counts[key] == 1]
    if kind == "unseen_event":                      # a template never logged in normal runs
        for _ in range(rng.choice((1, 1, 1, 2))):
            keys.insert(rng.randint(1, len(keys)), rng.choice(_ANOMALY_KEYS))
    elif kind == "missing_step":                    # a required step silently skipped
        if not required:
            return None
        del keys[rng.choice(required)]
    elif kind == "out_of_order":                    # two required steps swapped
        pairs = [(a, b) for a, b in itertools.combinations(required, 2) if b - a <= 4]
        if not pairs:
            return None
        a, b = rng.choice(pairs)
        keys[a], keys[b] = keys[b], keys[a]
    elif kind == "repetition_burst":                # retry storm or a step looping
        calls = [i for i, key in enumerate(keys) if key == "call_out"]
        if calls and rng.random() < 0.5:
            at = rng.choice(calls) + 1
            keys[at:at] = ["call_retry"] * rng.randint(6, 40) + ["call_retry_ok"]
        else:
            at = rng.choice(required or range(len(keys)))
            keys[at:at] = [keys[at]] * rng.randint(4, 40)
    elif kind == "truncated":                       # the workflow stops early, no error
        # Cut at least one workflow event: losing a trailing background line is no anomaly.
        last = max(i for i, key in enumerate(keys) if key not in NOISE_KEYS)
        if len(keys) < 3 or last < max(1, len(keys) // 5):
            return None
        keys = keys[:rng.randint(max(1, len(keys) // 5), last)]
    elif kind == "cross_service":                   # another service's event shows up here
        other = rng.choice([s for s in model.services if s != service])
        keys.insert(rng.randint(1, max(1, len(keys) - 1)), rng.choice(model.own_keys[other]))
    elif kind == "error_cascade":                   # a downstream failure propagates
        calls = [i for i, key in enumerate(keys) if key == "call_out"]
        at = rng.choice(calls) + 1 if calls else rng.randint(1, max(1, len(keys) - 1))
        fail = ("timeout", "up_5xx")
        cascade = [rng.choice(fail)]
        if rng.random() < 0.6:
            cascade += ["call_retry", rng.choice(fail)]
        if rng.random() < 0.5:
            cascade.append("cb_open")
        cascade.append("req_fail")
        if keys[0] == "req_in" and rng.random() < 0.7:
            cascade.append("resp_out")
        keys = keys[:at] + cascade
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}")
    return keys
