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

from radar.errors import RadarError
from radar.fsutil import atomic_write_text

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Accumulates per-batch numbers and writes a record (and a console line) per call
    of :meth:`log_train` / :meth:`log_val`; ``enabled=False`` (ranks other than 0)
    counts but writes and prints nothing. ``device`` is where GPU memory is read."""

    def __init__(self, output_dir: Path, *, num_epochs: int, total_steps: int,
                 device=None, log: Callable[[str], None] = print, enabled: bool = True):
        self.path = Path(output_dir) / METRICS_FILE
        self.num_epochs, self.total_steps, self.device = num_epochs, total_steps, device
        self.log, self.enabled = log, enabled
        self.last_train_loss: float | None = None
        self.records = 0                # records in the file, this run's and the kept ones
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
        self.records += 1
        if self._writer is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._writer.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def log_train(self, step: int, epoch: int, lr: float) -> None:
        """The training numbers since the last call, at optimiser step ``step``."""
        from radar.device import memory_gb  # torch, only when training (not for plots)

        elapsed = max(time.perf_counter() - self._started, 1e-9)
        loss = self._loss / max(self._batches, 1)
        self.last_train_loss = loss
        record = {
            "kind": "train", "step": step, "epoch": epoch + 1,
            "loss": loss, "avg_loss": self._total_loss / max(self._total_batches, 1),
            "lr": lr,
            "sessions_per_s": self._sessions / elapsed, "tokens_per_s": self._tokens / elapsed,
            "padding_fraction": 1.0 - self._tokens / self._slots if self._slots else 0.0,
            "gpu_memory_gb": memory_gb(self.device) if self.device is not None else None,
            "time": time.time(),
        }
        self._write(record)
        if self.enabled:
            gpu = record["gpu_memory_gb"]
            self.log(f"Epoch {record['epoch']}/{self.num_epochs} | Step {step}/"
                     f"{self.total_steps} | Loss {loss:.4f} | Avg Loss {record['avg_loss']:.4f}"
                     f" | LR {lr:.2e} | {record['sessions_per_s']:.0f} sess/s | "
                     f"{record['tokens_per_s']:.0f} tok/s | pad {record['padding_fraction']:.1%}"
                     + (f" | GPU {gpu:.2f} GB" if gpu is not None else ""))
        self._reset_window()

    def log_val(self, step: int, epoch: int, val_loss: float, train_eval_loss: float) -> None:
        """``train_eval_loss``: the validation objective on a fixed sample of training data."""
        self._write({"kind": "val", "step": step, "epoch": epoch,
                     "val_loss": val_loss, "train_eval_loss": train_eval_loss,
                     "gap": val_loss - train_eval_loss, "time": time.time()})
        if self.enabled:
            self.log(f"Validation | Epoch {epoch} | Step {step} | "
                     f"Val Loss {val_loss:.4f} | Train Loss (eval) {train_eval_loss:.4f} | "
                     f"Gap {val_loss - train_eval_loss:+.4f}")

    def begin(self, keep_records: int | None, step: int) -> None:
        """Start the file over from a checkpoint: keep the first ``keep_records`` records
        (what the file held when it was saved; 0 for a fresh run), so a resumed run
        never repeats a step. ``None`` (a checkpoint from before the count was saved)
        keeps the records up to ``step``. Rewritten atomically."""
        if not self.enabled:
            return
        parsed = metrics_lines(self.path, warn=self.log)
        if keep_records is None:
            kept = [line for line, record in parsed if record["step"] <= step]
        else:
            kept = [line for line, _ in parsed[:keep_records]]
        text = "".join(line + "\n" for line in kept)
        if self.path.is_file() and self.path.read_bytes() != text.encode("utf-8"):
            atomic_write_text(self.path, text)     # a torn last line goes too
        self.records = len(kept)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# The numbers every record, and each kind of record, carries for plots and reports.
NUMBERS = {"train": ("loss", "lr", "sessions_per_s"), "val": ("val_loss", "train_eval_loss")}


def read_metrics(run_dir: str | Path, warn: Callable[[str], None] | None = None
                 ) -> list[dict]:
    """All records of a run's metrics file (empty when it has none)."""
    return [record for _, record in metrics_lines(Path(run_dir) / METRICS_FILE, warn=warn)]


def metrics_lines(path: Path, warn: Callable[[str], None] | None = None
                  ) -> list[tuple[str, dict]]:
    """Each record of a metrics file with its line (none when the file does not exist).

    A last line that is cut short or not UTF-8 is what training killed mid-write leaves:
    it is skipped with a warning naming the file (``warn``, else stderr). A damaged line
    before the last, or a record of the wrong shape, is a :class:`RadarError` naming the
    file and line.
    """
    if not path.is_file():
        return []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RadarError(f"{path}: cannot read the metrics file ({exc.strerror or exc})"
                         ) from None
    lines = [(number, line) for number, line in enumerate(raw.split(b"\n"), start=1)
             if line.strip()]
    parsed = []
    for index, (number, line) in enumerate(lines):
        try:
            text = line.decode("utf-8")
            record = _metrics_record(json.loads(text))
        except (ValueError, TypeError, RecursionError) as exc:   # not UTF-8, not JSON too
            if index == len(lines) - 1:
                (warn or _warn)(f"{path}, line {number}: the last record is cut short or "
                                f"damaged ({exc}); skipped (training stopped mid-write)")
                break
            raise RadarError(f"{path}, line {number}: not a metrics record ({exc}); delete "
                             "that line, or the file (training writes it again)") from None
        parsed.append((text.rstrip("\r"), record))
    return parsed


def _metrics_record(record: object) -> dict:
    if not isinstance(record, dict):
        raise TypeError(f"a JSON {type(record).__name__}, not an object")
    kind = record.get("kind")
    for key in ("step", *(NUMBERS.get(kind, ()) if isinstance(kind, str) else ())):
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{key} is {value!r}, not a number")
    return record


def _warn(message: str) -> None:
    from radar.console import err_console

    err_console.print(f"warning: {message}", markup=False, highlight=False)
