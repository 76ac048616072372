"""Checkpoints as plain dicts of tensors and primitives, written atomically.

Everything needed to continue exactly is inside: model, optimiser, scheduler,
scaler, RNG states, data position, step, best metric, the resolved config and the
detector's name. Files load with ``weights_only=True``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radar.errors import RadarError
from radar.fsutil import atomic_write
from radar.rundir import BEST_CHECKPOINT, LAST_CHECKPOINT

FORMAT_VERSION = 1
STEP_PATTERN = re.compile(r"checkpoint_step_(\d+)\.pt$")
EPOCH_PATTERN = re.compile(r"epoch_(\d+)\.pt$")
# Numbered checkpoints training writes as it goes: the glob that finds them, the pattern
# that reads their number.
NUMBERED = {"step": ("checkpoint_step_*.pt", STEP_PATTERN), "epoch": ("epoch_*.pt", EPOCH_PATTERN)}


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


def numbered_checkpoints(directory: str | Path, kind: str = "step") -> list[tuple[int, Path]]:
    """``checkpoint_step_N.pt`` (``kind="step"``) or ``epoch_N.pt`` (``"epoch"``) files in
    ``directory``, oldest first."""
    glob, pattern = NUMBERED[kind]
    found = []
    for path in Path(directory).glob(glob):
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def step_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``checkpoint_step_N.pt`` files in ``directory``, oldest step first."""
    return numbered_checkpoints(directory, "step")


def prune_checkpoints(directory: str | Path, keep: int, kind: str = "step") -> list[Path]:
    """Delete all but the newest ``keep`` step (or epoch) checkpoints (``keep <= 0`` keeps
    all). ``best_model.pt`` and ``last.pt`` are files of their own, never touched."""
    if keep <= 0:
        return []
    removed = []
    for _, path in numbered_checkpoints(directory, kind)[:-keep]:
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


RESUMABLE_KEYS = ("model", "optimizer", "scheduler", "rng", "step", "epoch", "batch_in_epoch")
RESUME_NAMES = (NUMBERED["step"][0], NUMBERED["epoch"][0], BEST_CHECKPOINT, LAST_CHECKPOINT)


def resolve_resume(resume: str, output_dir: str | Path,
                   warn: Callable[[str], None] | None = None) -> Path:
    """``auto`` → the furthest valid checkpoint in ``output_dir``; else the path itself.

    Furthest: the highest training step (then epoch, then newest file) among the
    checkpoints the trainer writes that load and carry the optimiser state a resume
    needs. A damaged one (say, cut short by a crash) is skipped with a warning through
    ``warn`` (stderr by default) instead of stopping the resume.
    """
    if resume != "auto":
        return Path(resume)
    warn = warn or _warn_on_stderr
    found = []
    for path in sorted({p for pattern in RESUME_NAMES for p in Path(output_dir).glob(pattern)}):
        try:
            payload = load_checkpoint(path, mmap=True)
        except RadarError as exc:
            warn(f"--resume auto: skipping {path}: {exc}")
            continue
        missing = [key for key in RESUMABLE_KEYS if key not in payload]
        if missing:
            warn(f"--resume auto: skipping {path}: it lacks {', '.join(missing)} "
                 "(not a training checkpoint)")
            continue
        found.append(((int(payload["step"]), int(payload["epoch"]),
                       path.stat().st_mtime_ns), path))
    if not found:
        raise RadarError(f"--resume auto: no usable checkpoint in {output_dir}; "
                         "start without --resume or point --resume at a .pt file")
    return max(found)[1]


def remove_partial_writes(directory: str | Path) -> list[Path]:
    """Delete the temporary files interrupted atomic writes left in ``directory``
    (:func:`radar.fsutil.atomic_write` names them ``.NAME.RANDOM.tmp``)."""
    removed = []
    for path in Path(directory).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: str | Path,
                     what: str) -> None:
    """``model.load_state_dict(state)``, or a :class:`RadarError` naming ``path``, ``what``
    the model is, and how they differ (missing, unexpected or differently sized weights)."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    resized = [f"{key} is {list(state[key].shape)} in the checkpoint, "
               f"{list(value.shape)} here" for key, value in expected.items()
               if key in state and isinstance(value, torch.Tensor)
               and isinstance(state[key], torch.Tensor) and state[key].shape != value.shape]
    problems = ([f"{len(resized)} weight(s) differ in size: {_some(resized)}"] if resized else [])
    problems += [f"{len(missing)} weight(s) missing: {_some(missing)}"] if missing else []
    problems += [f"{len(unexpected)} unknown weight(s): {_some(unexpected)}"] if unexpected \
        else []
    if not problems:
        try:
            model.load_state_dict(state)
            return
        except (RuntimeError, ValueError) as exc:
            problems = [str(exc).splitlines()[0]]
    raise RadarError(f"checkpoint {path} does not fit {what}: {'; '.join(problems)}. It was "
                     "trained with another detector, model size or vocabulary")


def _some(items: list[str], shown: int = 2) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def _warn_on_stderr(message: str) -> None:
    from radar.console import err_console

    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)
