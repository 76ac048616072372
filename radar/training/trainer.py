"""The one Trainer every detector uses: AMP, accumulation, clipping, schedule, DDP, checkpoints.

Reads top to bottom like nanoGPT's loop: a detector supplies the loss; the
Trainer owns backward, precision, the optimiser, the schedule, logging,
validation and checkpoints. Rank 0 alone logs and saves.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from radar.checkpoint import (
    load_checkpoint,
    load_model_state,
    prune_checkpoints,
    remove_partial_writes,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from radar.config import RadarConfig
from radar.console import step_progress
from radar.data.dataset import SessionCorpus
from radar.data.sampling import BucketBatchSampler
from radar.detector import Detector
from radar.device import autocast_context, resolve_precision
from radar.distributed import DistInfo, all_reduce_sum
from radar.errors import RadarError
from radar.metrics_log import MetricsLog
from radar.rundir import BEST_CHECKPOINT, LAST_CHECKPOINT

TRAIN_PROBE_WINDOWS = 2048
# Trimming (training.trim_fraction) starts after this share of the steps: before the
# model knows what is common, its worst-fitted sessions are just the rare normal ones.
TRIM_START = 0.2


@dataclass
class TrainResult:
    step: int
    epoch: int
    best_val_loss: float | None
    last_train_loss: float | None
    last_val_loss: float | None
    train_eval_loss: float | None
    interrupted: bool
    checkpoint: Path | None


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                    device: torch.device) -> torch.optim.AdamW:
    """AdamW with no decay on biases and LayerNorm/embedding-norm weights (1-D params)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")


def build_scheduler(optimizer, lr: float, min_lr: float, total_steps: int, warmup_steps: int):
    """Linear warm-up to ``lr``, then linear decay to ``min_lr`` at ``total_steps``."""
    floor = min_lr / lr if lr > 0 else 0.0

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return floor + (1.0 - floor) * (1.0 - progress)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _identity(batch):
    return batch


class Trainer:
    """Trains ``model`` with ``detector.training_loss`` on a corpus of normal sessions.

    ``progress``: show a progress bar with an ETA on stderr (rank 0).
    """

    def __init__(self, detector: Detector, model: torch.nn.Module, config: RadarConfig,
                 train_data: SessionCorpus, val_data: SessionCorpus | None, *,
                 device: torch.device, output_dir: str | Path, dist_info: DistInfo | None = None,
                 extra_state: dict[str, Any] | None = None,
                 on_step: Callable[[Trainer], None] | None = None,
                 log: Callable[[str], None] = print, progress: bool = True):
        self.detector, self.config, self.tc = detector, config, config.training
        self.train_data, self.val_data = train_data, val_data
        self.device, self.dist = device, dist_info or DistInfo()
        self.output_dir = Path(output_dir)
        self.extra_state = extra_state or {}
        self.on_step, self.log, self.progress = on_step, log, progress
        self.precision = resolve_precision(self.tc.precision, device)
        self.raw_model = model.to(device)
        if self.tc.gradient_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable()
        self.model = model
        if self.tc.compile:
            self.model = torch.compile(self.model)
        if self.dist.enabled:
            self.model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = build_optimizer(self.raw_model, self.tc.learning_rate,
                                         self.tc.weight_decay, device)
        self.scheduler = build_scheduler(self.optimizer, self.tc.learning_rate, self.tc.min_lr,
                                         self.tc.total_steps,
                                         int(self.tc.warmup_ratio * self.tc.total_steps))
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.sampler = BucketBatchSampler(train_data.window_length, self.tc.batch_size,
                                          seed=self.tc.seed, rank=self.dist.rank,
                                          world_size=self.dist.world_size)
        self.step = self.epoch = self.batch_in_epoch = 0
        self.best_val: float | None = None
        self.last_val: float | None = None
        self.last_train_eval: float | None = None
        self.validated_at: tuple[int, int] | None = None    # (step, epoch) of the last one
        probe = np.random.default_rng([self.tc.seed, 1]).permutation(len(train_data))
        self._train_probe = np.sort(probe[:TRAIN_PROBE_WINDOWS])
        self._stop_reason: str | None = None
        self.metrics = MetricsLog(self.output_dir, num_epochs=self.tc.num_epochs,
                                  total_steps=self.tc.total_steps, device=device, log=log,
                                  enabled=self.dist.is_main)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector.name,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": rng_state(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "best_val_loss": self.best_val,
            "validated_at": list(self.validated_at) if self.validated_at else None,
            "metrics_records": self.metrics.records,
            "config": self.config.to_dict(),
            **self.extra_state,
        }

    def load_state(self, path: str | Path) -> None:
        payload = load_checkpoint(path, map_location=self.device)
        if payload.get("detector") != self.detector.name:
            raise RadarError(f"{path} holds a {payload.get('detector')!r} checkpoint, "
                             f"not {self.detector.name!r}")
        load_model_state(self.raw_model, payload["model"], path,
                         f"the {self.detector.name} model this config and data build "
                         "(--resume continues a run with the same settings)")
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError) as exc:
            raise RadarError(f"checkpoint {path}: its optimiser state does not fit this "
                             f"model ({exc}); start a fresh output_dir instead of --resume"
                             ) from None
        self.scheduler.load_state_dict(payload["scheduler"])
        if self.scaler and payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        set_rng_state(payload["rng"])
        self.step, self.epoch = payload["step"], payload["epoch"]
        self.batch_in_epoch = payload["batch_in_epoch"]
        self.best_val = payload.get("best_val_loss")
        validated = payload.get("validated_at")
        self.validated_at = tuple(validated) if validated else None
        self.metrics.begin(payload.get("metrics_records"), self.step)
        self.log(f"resumed from {path} at epoch {self.epoch + 1}, step {self.step}")

    def save(self, name: str) -> Path | None:
        if not self.dist.is_main:
            return None
        return save_checkpoint(self.output_dir / name, self.state_dict())

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the loop to save and stop after the current optimiser step."""
        self._stop_reason = reason

    # ------------------------------------------------------------------ loop
    def fit(self, resume: str | Path | None = None) -> TrainResult:
        """Train until ``total_steps``, ``num_epochs`` or a stop request (Ctrl-C, SIGTERM,
        :meth:`request_stop`); then save ``last.pt``."""
        tc = self.tc
        self._begin(resume)
        if not self.detector.trainable:
            if self.dist.is_main:
                self.log(f"{self.detector.name} is fitted when it is calibrated, not trained: "
                         "no training steps")
            self.metrics.close()
            return TrainResult(0, 0, None, None, None, None, False, self.save(LAST_CHECKPOINT))
        loader = self._loader()
        with self._signals_caught(), contextlib.closing(self.metrics), \
                self._progress_bar() as progress:
            while self.epoch < tc.num_epochs and not self._should_stop():
                self.sampler.set_epoch(self.epoch, skip=self.batch_in_epoch)
                self.raw_model.train()
                for batch in loader:
                    # Accumulate: DDP syncs gradients only on the batch that steps.
                    sync = (self.batch_in_epoch + 1) % tc.grad_accum_steps == 0
                    self._forward_backward(batch, sync)
                    self.batch_in_epoch += 1
                    if not sync:
                        continue
                    self._optimizer_step()
                    self.step += 1
                    progress(self.step)
                    if self.step % tc.log_interval == 0:
                        self.metrics.log_train(self.step, self.epoch,
                                               self.scheduler.get_last_lr()[0])
                    if tc.eval_interval and self.step % tc.eval_interval == 0:
                        self._validate()
                        self.raw_model.train()
                    if tc.save_interval and self.step % tc.save_interval == 0:
                        self._save_step_checkpoint()
                    if self.on_step:
                        self.on_step(self)
                    if self._should_stop():
                        break
                else:   # the epoch ran to its end
                    self._end_epoch()
            if self.step >= tc.total_steps:
                if self.dist.is_main:
                    self.log(f"reached total_steps={tc.total_steps}")
                self._validate()
            if self._stop_reason:
                self.save(f"checkpoint_step_{self.step}.pt")
        checkpoint = self.save(LAST_CHECKPOINT)
        if self._stop_reason and self.dist.is_main:
            self.log(f"{self._stop_reason}: saved {checkpoint}; continue with --resume auto")
        return TrainResult(self.step, self.epoch, self.best_val, self.metrics.last_train_loss,
                           self.last_val, self.last_train_eval, self._stop_reason is not None,
                           checkpoint)

    def _should_stop(self) -> bool:
        return self.step >= self.tc.total_steps or self._stop_reason is not None

    def _begin(self, resume: str | Path | None) -> None:
        """Clear what a crash left behind, then load ``resume`` or start the metrics file."""
        if self.dist.is_main:
            for path in remove_partial_writes(self.output_dir):
                self.log(f"removed {path.name}, left by an interrupted save")
        if resume is not None:
            self.load_state(resume)
        else:
            self.metrics.begin(0, 0)

    def _loader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            self.train_data, sampler=self.sampler, batch_size=None, collate_fn=_identity,
            # More loader processes than cores only adds contention (batches are cheap
            # vectorised gathers from the memory-mapped cache).
            num_workers=min(self.tc.num_workers, os.cpu_count() or 1),
            pin_memory=self.device.type == "cuda",
            # Its own generator: each new iterator draws a seed, and drawing it from the
            # global RNG would make a resumed run diverge from an uninterrupted one.
            generator=torch.Generator().manual_seed(self.tc.seed))

    @contextlib.contextmanager
    def _signals_caught(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM ask for a stop (save, then exit) instead of killing."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        self.request_stop(f"received {signal.Signals(signum).name}")

    def _progress_bar(self):
        if not (self.progress and self.dist.is_main):
            return contextlib.nullcontext(lambda step: None)
        return step_progress(self.tc.total_steps, f"training {self.detector.name} (steps)",
                             completed=self.step)

    def _forward_backward(self, batch, sync: bool) -> None:
        """Loss of one batch, scaled for accumulation (and fp16), backpropagated."""
        accum = self.tc.grad_accum_steps
        batch = batch.to(self.device, non_blocking=True)
        context = self.model.no_sync() if self.dist.enabled and not sync else \
            contextlib.nullcontext()
        try:
            with context:
                with autocast_context(self.precision, self.device):
                    loss = self._batch_loss(batch)
                scaled = loss / accum
                (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        except torch.OutOfMemoryError:
            raise RadarError(self._oom_message(batch)) from None
        if not torch.isfinite(loss):
            raise RadarError(f"loss became {loss.item()} at step {self.step}; lower "
                             "training.learning_rate or use training.precision=fp32")
        self.metrics.observe_batch(loss.item(), len(batch), int(batch.lengths.sum()),
                                   batch.input_ids.numel())

    def _batch_loss(self, batch) -> torch.Tensor:
        """The detector's loss; with ``training.trim_fraction``, past TRIM_START of the
        steps, the mean of all but the worst-fitted share of the batch's sessions."""
        trim = self.tc.trim_fraction
        if trim <= 0 or self.step < TRIM_START * self.tc.total_steps:
            return self.detector.training_loss(self.model, batch)
        losses = self.detector.session_losses(self.model, batch)
        keep = max(1, math.ceil((1.0 - trim) * losses.numel()))
        return torch.topk(losses, keep, largest=False, sorted=False).values.mean()

    def _optimizer_step(self) -> None:
        """unscale → clip → step → update the scaler → zero the gradients → schedule."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.tc.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.tc.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _save_step_checkpoint(self) -> None:
        self.save(f"checkpoint_step_{self.step}.pt")
        if self.dist.is_main:
            prune_checkpoints(self.output_dir, self.tc.keep_checkpoints, "step")

    def _end_epoch(self) -> None:
        self.detector.on_epoch_end(self.model)
        self.epoch += 1
        self.batch_in_epoch = 0
        self._validate()
        self.save(f"epoch_{self.epoch}.pt")
        if self.dist.is_main:
            prune_checkpoints(self.output_dir, self.tc.keep_epoch_checkpoints, "epoch")

    @torch.no_grad()
    def evaluate(self, data: SessionCorpus, items: np.ndarray | None = None) -> float:
        """Mean validation loss over ``data`` (or its ``items``), weighted by sessions and
        summed over ranks."""
        self.raw_model.eval()
        items = np.arange(len(data)) if items is None else np.asarray(items)
        sampler = BucketBatchSampler(data.window_length[items], self.tc.batch_size,
                                     shuffle=False, rank=self.dist.rank,
                                     world_size=self.dist.world_size)
        total = count = 0.0
        for positions in sampler:
            batch = data[items[positions]].to(self.device)
            with autocast_context(self.precision, self.device):
                loss = self.detector.validation_loss(self.raw_model, batch)
            total += float(loss) * len(batch)
            count += len(batch)
        total, count = all_reduce_sum([total, count], self.device)
        return total / count if count else math.nan

    def _validate(self) -> None:
        """Validation loss (and best_model.pt when it improved), once per model state:
        a second call at the same step and epoch would only repeat the record."""
        if self.val_data is None or len(self.val_data) == 0:
            return
        if self.validated_at == (self.step, self.epoch):
            return
        self.validated_at = (self.step, self.epoch)
        self.last_val = self.evaluate(self.val_data)
        # The same loss on a fixed sample of training windows, in eval mode too, so the
        # train/validation gap compares like with like (the running training loss has
        # dropout and random masks in it).
        self.last_train_eval = self.evaluate(self.train_data, self._train_probe)
        improved = self.best_val is None or self.last_val < self.best_val
        if improved:
            self.best_val = self.last_val
        self.metrics.log_val(self.step, self.epoch, self.last_val, self.last_train_eval)
        if improved:
            self.save(BEST_CHECKPOINT)

    def _oom_message(self, batch) -> str:
        size, width = len(batch), batch.input_ids.shape[1]
        return (f"CUDA out of memory on a batch of {size} sessions x {width} events "
                f"(training.batch_size={self.tc.batch_size}). Try "
                f"--set training.batch_size={max(1, self.tc.batch_size // 2)} with "
                f"--set training.grad_accum_steps={self.tc.grad_accum_steps * 2} to keep "
                "the effective batch, or --set training.gradient_checkpointing=true, "
                "or a smaller data.max_seq_length.")


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
