"""RADAR's LogBERT side by side with the reference (HelenGuohx/logbert) on HDFS_100k.

    python benchmarks/reference_logbert.py --reference /work/ref/logbert [--rounds 2]

``--reference`` is a copy of github.com/HelenGuohx/logbert (the folder holding
``bert_pytorch/``), kept outside this repository. Without it, or without
../shared/data/hdfs_100k, the script says so and exits 0.

Both models have the reference's HDFS size (hidden 256, 4 layers, 4 heads,
feed-forward 512), batch 32 for training, one torch thread each, and run in their
own subprocess (so peak RSS is each side's own), alternating ref / radar per round:

* train pass: one pass over the normal sessions of the train split (90%);
* whole epoch: what one epoch costs each training loop. The reference computes the
  hypersphere centre with a forward pass over train + validation before every
  epoch, then trains, then validates; RADAR trains (its centre is a running mean
  of the training forward passes), then validates;
* detect: score every session of the test split. The reference runs its predictor's
  loop (one forward pass with 65% of events masked at random, batch 32, then its
  per-session top-candidate check); RADAR runs ``score_sessions`` on length-sorted
  batches of ``detection.batch_size`` (128), starting with an empty window cache.

Models are freshly initialised: this measures speed, not quality (benchmarks/quality.py).
Torch >= 2.6 notes for the reference: only its model, dataset and trainer classes are
imported, so its ``np.array`` of ragged lists and ``torch.load`` calls are not reached.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HDFS = ROOT.parent / "shared" / "data" / "hdfs_100k" / "sessions.jsonl"
SIZE = {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
        "intermediate_size": 512}
TRAIN_BATCH, REF_MASK_RATIO, VALID_SHARE = 32, 0.65, 0.1


def hdfs_sessions(limit: int = 0) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """(train, validation, test) event lists: normal train-split sessions (the first
    ``limit`` when set) cut 90/10, and the whole test split."""
    rows = [json.loads(line) for line in HDFS.read_text().splitlines() if line.strip()]
    normal = [r["events"] for r in rows if r["split"] == "train" and r["label"] == 0]
    normal = normal[:limit] if limit else normal
    cut = int(len(normal) * (1 - VALID_SHARE))
    return normal[:cut], normal[cut:], [r["events"] for r in rows if r["split"] == "test"]


def import_reference(reference: Path) -> None:
    """Make ``bert_pytorch`` importable without its ``__init__`` (which pulls in its
    plotting scripts: seaborn, matplotlib, scipy); pandas only serves its log saving."""
    package = types.ModuleType("bert_pytorch")
    package.__path__ = [str(reference / "bert_pytorch")]
    sys.modules["bert_pytorch"] = package
    try:
        import pandas  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pandas")
        stub.__spec__ = importlib.machinery.ModuleSpec("pandas", None)
        sys.modules["pandas"] = stub


def reference_side(task: str, reference: Path, limit: int) -> dict:
    import_reference(reference)
    from bert_pytorch.dataset import LogDataset, WordVocab
    from bert_pytorch.model import BERT
    from bert_pytorch.trainer import BERTTrainer
    from torch.utils.data import DataLoader

    train, valid, test = hdfs_sessions(limit)
    vocab = WordVocab([[str(e) for e in s] for s in train])

    def loader(sessions, predict=False):
        keys = [[str(e) for e in s] for s in sessions]
        data = LogDataset(keys, [[0] * len(s) for s in keys], vocab, seq_len=512,
                          predict_mode=predict, mask_ratio=REF_MASK_RATIO)
        return DataLoader(data, batch_size=TRAIN_BATCH, collate_fn=data.collate_fn)

    bert = BERT(len(vocab), max_len=512, hidden=SIZE["hidden_size"],
                n_layers=SIZE["num_hidden_layers"], attn_heads=SIZE["num_attention_heads"])
    trainer = BERTTrainer(bert, len(vocab), loader(train), loader(valid), with_cuda=False,
                          hypersphere_loss=True, log_freq=None)
    trainer.hyper_center = torch.zeros(SIZE["hidden_size"])
    start = time.perf_counter()
    if task == "detect":
        return {"sessions": len(test), "seconds": reference_detect(trainer.model, vocab,
                                                                   loader, test)}
    if task == "epoch":   # the reference's per-epoch centre pass (train_log.calculate_center)
        with torch.no_grad():
            for data in [*loader(train), *loader(valid)]:
                trainer.model(data["bert_input"], data["time_input"])
    trainer.train(0)
    if task == "epoch":
        trainer.valid(0)
    return {"sessions": len(train), "seconds": time.perf_counter() - start}


def reference_detect(model, vocab, loader, test) -> float:
    """The reference predictor's loop (predict_log.Predictor.helper), longest first."""
    ordered = sorted(test, key=len, reverse=True)
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        for data in loader(ordered, predict=True):
            result = model(data["bert_input"], data["time_input"])
            output = result["logkey_output"]
            for i in range(len(data["bert_label"])):
                mask = data["bert_label"][i] > 0
                for j, token in enumerate(data["bert_label"][i][mask]):
                    _ = token in torch.argsort(-output[i][mask][j])[:6]
    return time.perf_counter() - start


def radar_side(task: str, limit: int) -> dict:
    from radar.config import load_config
    from radar.data.vocab import EventVocab
    from radar.detector import SessionBatch
    from radar.plugins import make_detector
    from radar.training.trainer import build_optimizer

    train, valid, test = hdfs_sessions(limit)
    vocab = EventVocab(np.unique(np.concatenate([np.asarray(s) for s in train])))
    config = load_config(None, [f"model.{k}={v}" for k, v in SIZE.items()]
                         + ["model.max_position_embeddings=520", "data.max_seq_length=512"])
    detector = make_detector("logbert", config)
    model = build_model(detector, vocab)

    def batches(sessions, size, shuffle):
        order = np.argsort([len(s) for s in sessions], kind="stable")
        cuts = [order[i:i + size] for i in range(0, len(order), size)]
        if shuffle:
            np.random.default_rng(0).shuffle(cuts)
        return [SessionBatch.from_lists([vocab.encode(np.asarray(sessions[j])).tolist()
                                         for j in cut]) for cut in cuts]

    if task == "detect":
        test_batches = batches(test, config.detection.batch_size, shuffle=False)
        start = time.perf_counter()
        for batch in test_batches:
            detector.score_sessions(model, batch)
        return {"sessions": len(test), "seconds": time.perf_counter() - start}
    optimizer = build_optimizer(model, 1e-3, 0.0, torch.device("cpu"))
    train_batches = batches(train, TRAIN_BATCH, shuffle=True)
    start = time.perf_counter()
    model.train()
    for batch in train_batches:
        detector.training_loss(model, batch).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if task == "epoch":
        detector.on_epoch_end(model)
        for batch in batches(valid, TRAIN_BATCH, shuffle=False):
            detector.validation_loss(model, batch)
    return {"sessions": len(train), "seconds": time.perf_counter() - start}


def build_model(detector, vocab):
    """The one call into Detector.build_model (its signature is moving: #14)."""
    import inspect

    if "window" in inspect.signature(detector.build_model).parameters:
        return detector.build_model(vocab, 510)
    return detector.build_model(vocab)


def child(side: str, task: str, reference: Path, limit: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    result = reference_side(task, reference, limit) if side == "ref" else radar_side(task, limit)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_child(side: str, task: str, reference: Path, limit: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", side, task, "--reference",
                          str(reference), "--limit-train", str(limit)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, default=Path("/work/ref/logbert"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--task", action="append", choices=("train", "epoch", "detect"))
    parser.add_argument("--limit-train", type=int, default=0,
                        help="train on the first N normal sessions only (0: all 6,352)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.reference, args.limit_train)
        return
    if not (args.reference / "bert_pytorch").is_dir():
        print(f"no reference copy at {args.reference} (clone github.com/HelenGuohx/logbert "
              "there, outside this repository); skipped")
        return
    if not HDFS.is_file():
        print(f"no HDFS_100k at {HDFS}; skipped")
        return
    print(f"torch {torch.__version__}, 1 thread per side, {args.rounds} alternating rounds")
    print("| task | round | reference sessions/s | RADAR sessions/s | RADAR / ref "
          "| peak RSS ref / RADAR (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for task in args.task or ["train", "epoch", "detect"]:
        for round_index in range(args.rounds):
            ref = run_child("ref", task, args.reference, args.limit_train)
            ours = run_child("radar", task, args.reference, args.limit_train)
            ref_rate = ref["sessions"] / ref["seconds"]
            our_rate = ours["sessions"] / ours["seconds"]
            print(f"| {task} | {round_index + 1} | {ref_rate:,.0f} | {our_rate:,.0f} | "
                  f"{our_rate / ref_rate:.2f}x | {ref['peak_rss_mb']:,.0f} / "
                  f"{ours['peak_rss_mb']:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
