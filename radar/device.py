"""Device and precision choice: CUDA when present, bf16 where supported, else fp16."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import torch

from radar.errors import ConfigError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else \
            torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for but CUDA is not available; "
                          "use --device cpu or install a CUDA build of torch")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA with bf16 support, fp16 on older CUDA, fp32 on CPU."""
    if precision != "auto":
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("training.precision=fp16 needs a CUDA device; use bf16 or fp32")
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast_context(precision: str, device: torch.device):
    """The autocast context for a precision, or a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_gb(device: torch.device) -> float | None:
    """Peak CUDA memory allocated on ``device`` in GB, None on CPU."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 1e9


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model lives: its first parameter's device, else its first buffer's (a
    fitted detector may have buffers only), else the CPU."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on another C library."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_freed_memory() -> None:
    """Hand heap pages freed since the last call back to the system (glibc; a no-op
    elsewhere). Scoring allocates and frees batch tensors of ever-changing sizes, which
    glibc keeps by default, so without this the RSS climbs with the batches scored, not
    with what is alive (measured in docs/lab/benchmarks.md, "Scale rehearsal")."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
