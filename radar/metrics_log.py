"""Training metrics: the console line, a JSON Lines file, and TensorBoard when installed.

``metrics.jsonl`` in the run directory holds one object per log interval
(``"kind": "train"``) and per validation (``"kind": "val"``); plots and reports
read it. On resume, entries past the resumed step are dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from radar.fsutil import atomic_write_text

if TYPE_CHECKING:
    from radar.train import Trainer

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, output_dir: Path, enabled: bool = True):
        self.path = Path(output_dir) / METRICS_FILE
        self.enabled = enabled
        self.last_train_loss: float | None = None
        self._handle = None
        self._writer = None
        self._total_loss = 0.0
        self._total_batches = 0
        self._reset_window()

    def _reset_window(self) -> None:
        self._loss = 0.0
        self._batches = self._sessions = self._tokens = self._slots = 0
        self._started = time.perf_counter()

    def observe_batch(self, loss: float, sessions: int, tokens: int, slots: int) -> None:
        self._loss += loss
        self._batches += 1
        self._total_loss += loss
        self._total_batches += 1
        self._sessions += sessions
        self._tokens += tokens
        self._slots += slots

    def _write(self, record: dict) -> None:
        if not self.enabled:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._writer = SummaryWriter(str(self.path.parent / "tensorboard"))
            except ImportError:   # tensorboard is optional
                self._writer = None
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()
        if self._writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def log_train(self, trainer: Trainer, log: Callable[[str], None]) -> None:
        from radar.device import memory_gb  # torch, only when training (not for plots)

        elapsed = max(time.perf_counter() - self._started, 1e-9)
        loss = self._loss / max(self._batches, 1)
        self.last_train_loss = loss
        record = {
            "kind": "train", "step": trainer.step, "epoch": trainer.epoch + 1,
            "loss": loss, "avg_loss": self._total_loss / max(self._total_batches, 1),
            "lr": trainer.scheduler.get_last_lr()[0],
            "sessions_per_s": self._sessions / elapsed, "tokens_per_s": self._tokens / elapsed,
            "padding_fraction": 1.0 - self._tokens / self._slots if self._slots else 0.0,
            "gpu_memory_gb": memory_gb(trainer.device), "time": time.time(),
        }
        self._write(record)
        if self.enabled:
            gpu = record["gpu_memory_gb"]
            log(f"Epoch {record['epoch']}/{trainer.tc.num_epochs} | Step {trainer.step}/"
                f"{trainer.tc.total_steps} | Loss {loss:.4f} | Avg Loss {record['avg_loss']:.4f}"
                f" | LR {record['lr']:.2e} | {record['sessions_per_s']:.0f} sess/s | "
                f"{record['tokens_per_s']:.0f} tok/s | pad {record['padding_fraction']:.1%}"
                + (f" | GPU {gpu:.2f} GB" if gpu is not None else ""))
        self._reset_window()

    def log_val(self, trainer: Trainer, val_loss: float, train_eval_loss: float,
                log: Callable[[str], None]) -> None:
        """``train_eval_loss``: the validation objective on a fixed sample of training data."""
        self._write({"kind": "val", "step": trainer.step, "epoch": trainer.epoch,
                     "val_loss": val_loss, "train_eval_loss": train_eval_loss,
                     "gap": val_loss - train_eval_loss, "time": time.time()})
        if self.enabled:
            log(f"Validation | Epoch {trainer.epoch} | Step {trainer.step} | "
                f"Val Loss {val_loss:.4f} | Train Loss (eval) {train_eval_loss:.4f} | "
                f"Gap {val_loss - train_eval_loss:+.4f}")

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (they belong to the run being resumed over)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All records of a run's metrics file (empty when it has none)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
