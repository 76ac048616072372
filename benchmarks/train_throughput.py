"""Training and detection throughput of LogBERT through the shared Trainer's code path.

    python benchmarks/train_throughput.py [--steps 20] [--device cpu|cuda] [--precision fp32|bf16]

For each model size (the demo's tiny model and the LogBERT paper's: hidden 256,
4 layers, 4 heads) it times optimiser steps on demo-generator sessions two ways:
batches padded to their longest member with length-bucketed sampling (what RADAR
does) and every batch padded to 512 (the user's token_ids layout), then times
detection (scoring) with bucketed batches. Prints a Markdown table.
With --device cuda it also runs BERT-base and reports peak GPU memory at batch 32.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radar.config import load_config
from radar.data.cache import cache_dir_for, open_prepared
from radar.data.cache_build import prepare_files
from radar.data.dataset import SessionCorpus
from radar.data.sampling import BucketBatchSampler
from radar.data.synth import generate
from radar.data.vocab import EventVocab
from radar.device import autocast_context
from radar.plugins import make_detector
from radar.training.trainer import build_optimizer

SIZES = {
    "demo (h64, 2 layers)": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                 "intermediate_size": 128},
    "paper (h256, 4 layers)": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
                                   "intermediate_size": 1024},
    "BERT-base (h768, 12 layers)": {"hidden_size": 768, "num_hidden_layers": 12,
                                        "num_attention_heads": 12, "intermediate_size": 3072},
}


def corpus(workdir: Path) -> SessionCorpus:
    data = workdir / "data"
    if not list(data.glob("*.json")):
        generate(data, days=1, sessions=4000, seed=11)
    day_file = next(data.glob("preprocessed_logs_*.json"))
    prepare_files([day_file], workdir / "cache", workers=1)
    day = open_prepared(cache_dir_for(day_file, workdir / "cache"))
    return SessionCorpus([day], EventVocab(np.unique(np.asarray(day.events))), window=510)


def detector_for(size: dict):
    config = load_config(None, [f"model.{k}={v}" for k, v in size.items()]
                         + ["model.max_position_embeddings=520", "data.max_seq_length=512"])
    return make_detector("logbert", config)


def time_training(det, model, data, batches, device, precision, pad_to=None) -> dict:
    optimizer = build_optimizer(model, 1e-4, 0.01, device)
    model.train()
    sessions = tokens = slots = 0
    for i, items in enumerate(batches):
        batch = data[items]
        if pad_to:   # the baseline: every batch as wide as the user's padded token_ids
            wide = torch.zeros(len(batch), pad_to - 2, dtype=torch.long)
            wide[:, :batch.input_ids.shape[1]] = batch.input_ids
            batch.input_ids = wide
        batch = batch.to(device)
        if i == 2:   # two warm-up steps
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            sessions = tokens = slots = 0
        with autocast_context(precision, device):
            loss = det.training_loss(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sessions += len(batch)
        tokens += int(batch.lengths.sum())
        slots += batch.input_ids.numel()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"sessions_per_s": sessions / seconds, "tokens_per_s": tokens / seconds,
            "padding": 1 - tokens / slots}


@torch.no_grad()
def time_scoring(det, model, data, batches, device, precision) -> float:
    model.eval()
    n = 0
    start = time.perf_counter()
    for items in batches:
        with autocast_context(precision, device):
            det.score_sessions(model, data[items].to(device))
        n += len(items)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "radar-tp")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = corpus(args.workdir)
    sampler = BucketBatchSampler(data.window_length, args.batch_size, seed=0)
    batches = list(sampler)[:args.steps + 2]
    score_batches = list(BucketBatchSampler(data.window_length, 128, shuffle=False))[:8]
    sizes = SIZES if device.type == "cuda" else dict(list(SIZES.items())[:2])
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}),"
          f" torch threads {torch.get_num_threads()}, precision {args.precision}, "
          f"batch {args.batch_size}, {args.steps} timed steps")
    print("| model | batches | sessions/s | tokens/s | padding | scoring sessions/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, size in sizes.items():
        det = detector_for(size)
        for label, pad_to in (("bucketed, padded to batch", None), ("padded to 512", 512)):
            torch.manual_seed(0)
            model = det.build_model(data.vocab, data.window).to(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            result = time_training(det, model, data, batches, device, args.precision, pad_to)
            scoring = (f"{time_scoring(det, model, data, score_batches, device, args.precision):,.0f}"
                       if pad_to is None else "")
            memory = (f" (peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB)"
                      if device.type == "cuda" else "")
            print(f"| {name} | {label}{memory} | {result['sessions_per_s']:,.0f} | "
                  f"{result['tokens_per_s']:,.0f} | {result['padding']:.1%} | {scoring} |")


if __name__ == "__main__":
    main()
