"""Checkpoints as plain dicts of tensors and primitives, written atomically.

Everything needed to continue exactly is inside: model, optimiser, scheduler,
scaler, RNG states, data position, step, best metric, the resolved config and the
detector's name. Files load with ``weights_only=True``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radar.errors import RadarError
from radar.fsutil import atomic_write

FORMAT_VERSION = 1
STEP_PATTERN = re.compile(r"checkpoint_step_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch RNG states in a weights_only-loadable form."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32),
                         np_state["pos"], np_state["has_gauss"], np_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file, fsync, rename)."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        torch.save({"format_version": FORMAT_VERSION, **payload}, handle)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", *,
                    mmap: bool = False) -> dict[str, Any]:
    """Load a RADAR checkpoint safely (``weights_only=True``) with readable errors.

    ``mmap=True`` maps the tensors from the file instead of reading them: for callers
    that only look at the checkpoint's metadata (step, config, training files)."""
    path = Path(path)
    if not path.is_file():
        raise RadarError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign file
        raise RadarError(f"checkpoint {str(path)!r} cannot be read ({type(exc).__name__}: "
                         f"{exc}); it may be truncated or not a RADAR checkpoint") from None
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise RadarError(f"{path} is not a RADAR checkpoint")
    if payload["format_version"] > FORMAT_VERSION:
        raise RadarError(f"{path} was written by a newer RADAR (format "
                         f"{payload['format_version']}); upgrade radar to load it")
    return payload


def step_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``checkpoint_step_N.pt`` files in ``directory``, oldest step first."""
    found = []
    for path in Path(directory).glob("checkpoint_step_*.pt"):
        match = STEP_PATTERN.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_step_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints (``keep <= 0`` keeps all)."""
    if keep <= 0:
        return []
    removed = []
    for _, path in step_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def resolve_resume(resume: str, output_dir: str | Path) -> Path:
    """``auto`` → newest of last.pt / step checkpoints in ``output_dir``; else the path."""
    if resume != "auto":
        return Path(resume)
    candidates = [path for _, path in step_checkpoints(output_dir)]
    last = Path(output_dir) / "last.pt"
    if last.is_file():
        candidates.append(last)
    if not candidates:
        raise RadarError(f"--resume auto: no checkpoint in {output_dir}; "
                         "start without --resume or point --resume at a .pt file")
    return max(candidates, key=lambda path: path.stat().st_mtime_ns)
