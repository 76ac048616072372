"""What a training run is about to do, said before it starts: model size, device, steps
and a rough time estimate, with a warning and a smaller model to try when a CPU run
would take long.

The estimate counts the usual 6 floating-point operations per parameter and token of
a training step (forward and backward), divides by the device's matrix-multiply rate
measured here for a fraction of a second, at :data:`EFFICIENCY` of it, and adds a fixed
cost per step (optimiser, masking, Python) that dominates for tiny models. It is meant
to tell minutes from hours, not to be exact. On cores shared with other busy processes
it runs short: a 400-step demo-sized LogBERT run on 2 CPU cores at load average 16 was
estimated at 2 min and went at 1.4 s a step (about 9 min).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from radar.config import RadarConfig, load_config, shipped_config

# Share of the measured matrix-multiply rate a training step achieves (attention,
# element-wise ops and data movement run slower than one large matmul).
EFFICIENCY = 0.3
STEP_OVERHEAD_S = {"cpu": 0.1, "cuda": 0.02}     # per optimiser step, whatever the model
SLOW_ON_CPU_S = 30 * 60                           # longer than this on CPU: warn
PLACEHOLDER_EVENTS = 1000                         # vocabulary assumed before there is one


@dataclass
class TrainingEstimate:
    parameters: int
    steps: int
    tokens_per_step: int
    seconds: float


def describe_plan(config: RadarConfig, n_sessions: int, device: torch.device, *,
                  name: str | None = None, vocab=None, n_windows: int | None = None,
                  mean_length: float | None = None, world_size: int = 1,
                  rate: float | None = None) -> list[str]:
    """Lines telling what training detector ``name`` (default: the first) will do.

    ``n_windows`` (model inputs; default ``n_sessions``) and ``mean_length`` (events per
    window; default the full window, an upper bound) come from the prepared data when
    known; ``vocab`` is the run's vocabulary (a placeholder otherwise); ``rate`` the
    device's FLOP/s (measured when not given).
    """
    name = name or config.detectors[0]
    rate = rate or measured_flops(device)
    estimate = estimate_training(config, name, n_sessions, device, rate, vocab=vocab,
                                 n_windows=n_windows, mean_length=mean_length,
                                 world_size=world_size)
    tc = config.training
    lines = [
        (f"plan: train {name} ({_millions(estimate.parameters)} parameters) on "
         f"{_device_name(device)}, {estimate.steps:,} optimiser steps (at most "
         f"{tc.num_epochs} epochs of {n_windows or n_sessions:,} windows, batch "
         f"{tc.batch_size} x {tc.grad_accum_steps} accumulation, up to "
         f"{estimate.tokens_per_step:,} events a step)"),
        (f"plan: estimated training time {_duration(estimate.seconds)} (rough: "
         f"{rate:.2g} FLOP/s measured on this device)")]
    if device.type == "cpu" and estimate.seconds > SLOW_ON_CPU_S:
        lines.append(f"warning: {name} at this size would train for about "
                     f"{_duration(estimate.seconds)} on CPU. " + _smaller_model_hint(
                         config, name, n_sessions, device, rate, vocab=vocab,
                         n_windows=n_windows, mean_length=mean_length))
    return lines


def estimate_training(config: RadarConfig, name: str, n_sessions: int,
                      device: torch.device, rate: float, *, vocab=None,
                      n_windows: int | None = None, mean_length: float | None = None,
                      world_size: int = 1) -> TrainingEstimate:
    """Steps and seconds of training ``name`` as ``config`` says (see the module doc)."""
    tc = config.training
    windows = n_windows or n_sessions
    batches = math.ceil(windows / (tc.batch_size * world_size))
    steps = min(tc.total_steps, tc.num_epochs * max(1, batches // tc.grad_accum_steps))
    width = config.data.max_seq_length
    per_window = width if mean_length is None else min(width, mean_length + 2)
    tokens = int(tc.batch_size * tc.grad_accum_steps * per_window)
    parameters = parameter_count(config, name, vocab)
    per_step = STEP_OVERHEAD_S.get(device.type, 0.1) + 6 * parameters * tokens / (
        EFFICIENCY * rate)
    return TrainingEstimate(parameters, steps, tokens, steps * per_step)


def parameter_count(config: RadarConfig, name: str, vocab=None) -> int:
    """Parameters of the model ``config`` builds for detector ``name`` (built on the
    meta device: no memory, no time)."""
    from radar.data.dataset import window_length
    from radar.data.vocab import EventVocab
    from radar.plugins import make_detector

    vocab = vocab if vocab is not None else EventVocab(np.arange(1, PLACEHOLDER_EVENTS + 1))
    detector = make_detector(name, config)
    with torch.device("meta"):
        model = detector.build_model(vocab, window_length(config.data.max_seq_length))
    return sum(param.numel() for param in model.parameters())


def measured_flops(device: torch.device, seconds: float = 0.2) -> float:
    """Matrix-multiply rate of ``device`` (FLOP/s) in the precision training uses there."""
    from radar.device import resolve_precision

    precision = resolve_precision("auto", device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    size = 1024 if device.type == "cpu" else 4096
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    done, started = 0, None
    while True:
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if started is None:                  # the first product warms up, untimed
            started = time.perf_counter()
        elif time.perf_counter() - started >= seconds:
            break
        done += 1
    return 2 * size ** 3 * max(done, 1) / (time.perf_counter() - started)


def _smaller_model_hint(config: RadarConfig, name: str, n_sessions: int,
                        device: torch.device, rate: float, **data) -> str:
    """The demo config's size of ``name`` as ``--set`` options, with its estimate.

    Only sizes change: dropout and mask rates stay, and so do position tables, which
    follow data.max_seq_length rather than the model's size."""
    small, _ = load_config(shipped_config("demo")).model_section(name)
    current, key = config.model_section(name)
    changes = {k: v for k, v in small.items() if current.get(k) != v
               and not any(word in k for word in ("dropout", "mask", "position"))}
    if not changes:
        return "Try a GPU (training.device=cuda), or fewer training.total_steps."
    trial = dataclasses.replace(config, models={**config.models, name: {**current, **changes}},
                                model={} if key == "model" else config.model)
    quick = estimate_training(trial, name, n_sessions, device, rate, **data)
    options = " ".join(f"--set models.{name}.{k}={v}" for k, v in changes.items())
    return (f"For a first try, the demo's small {name} ({_millions(quick.parameters)} "
            f"parameters, about {_duration(quick.seconds)}): {options}; or train on a GPU.")


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e5 else f"{count / 1e3:.0f}K"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
