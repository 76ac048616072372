"""The shared Trainer: exact resume, checkpoints, schedule, signals, DDP equivalence."""

from __future__ import annotations

import itertools
import json
import os
import signal

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from toy import ToyDetector, pattern_sessions, write_day

from radar.checkpoint import load_checkpoint, numbered_checkpoints, step_checkpoints
from radar.config import load_config
from radar.data.cache import cache_dir_for, open_prepared
from radar.data.cache_build import prepare_files
from radar.data.dataset import SessionCorpus
from radar.data.vocab import EventVocab
from radar.distributed import DistInfo
from radar.metrics_log import MetricsLog, read_metrics
from radar.training.trainer import Trainer, build_optimizer, build_scheduler


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path)


DAY_NAME = "preprocessed_logs_2025-02-24.json"


def make_corpus(root, n=40):
    day = write_day(root / "data" / DAY_NAME, pattern_sessions(n))
    prepare_files([day], root / "cache", workers=1, max_seq_length=64, strict=False)
    return open_corpus(root)


def open_corpus(root):
    """The corpus make_corpus prepared under ``root``, opened without writing anything
    (processes sharing it must not rewrite the day file or its cache)."""
    prepared = open_prepared(cache_dir_for(root / "data" / DAY_NAME, root / "cache"))
    vocab = EventVocab(np.arange(1, 7))
    return SessionCorpus([prepared], vocab, window=16)


def config_for(out, **training):
    overrides = [f"output_dir={out}", "training.num_workers=0", "training.learning_rate=0.05",
                 "training.warmup_ratio=0.0", "training.log_interval=2",
                 "training.save_interval=4", "training.keep_checkpoints=0",
                 "training.batch_size=8", "training.num_epochs=5", "training.total_steps=12"]
    overrides += [f"training.{k}={v}" for k, v in training.items()]
    return load_config(None, overrides)


def train(corpus, out, *, noisy=True, resume=None, stop_at=None, **training):
    torch.manual_seed(0)
    detector = ToyDetector(noisy=noisy)
    model = detector.build_model(corpus.vocab, corpus.window)

    def on_step(trainer):
        if stop_at is not None and trainer.step == stop_at:
            trainer.request_stop("test stop")

    trainer = Trainer(detector, model, config_for(out, **training), corpus, corpus,
                      device=torch.device("cpu"), output_dir=out, on_step=on_step,
                      log=lambda message: None)
    return trainer, trainer.fit(resume=resume)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("stop_at", [3, 5])   # 5 batches per epoch: mid-epoch and boundary
def test_stopped_and_resumed_run_matches_uninterrupted(corpus, tmp_path, stop_at):
    straight, result = train(corpus, tmp_path / "a")
    assert result.step == 12 and not result.interrupted

    _, partial = train(corpus, tmp_path / "b", stop_at=stop_at)
    assert partial.interrupted and partial.step == stop_at
    resumed, final = train(corpus, tmp_path / "b", resume=tmp_path / "b" / "last.pt")
    assert final.step == 12
    for key, value in weights(straight.raw_model).items():
        torch.testing.assert_close(resumed.raw_model.state_dict()[key], value)
    # The metrics file continues without duplicate steps.
    steps = [r["step"] for r in read_metrics(tmp_path / "b") if r["kind"] == "train"]
    assert steps == sorted(set(steps))


def test_checkpoints_hold_everything_and_load_safely(corpus, tmp_path):
    train(corpus, tmp_path, keep_checkpoints=2)
    names = {p.name for p in tmp_path.glob("*.pt")}
    assert {"last.pt", "best_model.pt", "epoch_1.pt", "epoch_2.pt"} <= names
    assert [step for step, _ in step_checkpoints(tmp_path)] == [8, 12]   # newest 2 kept
    payload = load_checkpoint(tmp_path / "last.pt")
    for key in ("model", "optimizer", "scheduler", "rng", "step", "epoch", "batch_in_epoch",
                "best_val_loss", "config", "detector"):
        assert key in payload
    assert payload["detector"] == "toy" and payload["step"] == 12
    assert payload["config"]["training"]["batch_size"] == 8
    assert not list(tmp_path.glob(".*.tmp"))       # atomic writes left no temp files


def test_resume_drops_a_torn_last_metrics_line(tmp_path):
    """kill -9 mid-write leaves half a record: resuming cuts it off before appending."""
    record = {"kind": "val", "step": 4, "epoch": 1, "val_loss": 1.0, "train_eval_loss": 0.9}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + '\n{"step": 21, "lo')
    warnings = []
    log = MetricsLog(tmp_path, num_epochs=1, total_steps=8, log=warnings.append)
    log.begin(None, step=4)
    assert log.records == 1 and "line 2: the last record is cut short" in warnings[0]
    assert (tmp_path / "metrics.jsonl").read_text() == json.dumps(record) + "\n"
    assert read_metrics(tmp_path) == [record]


def test_only_the_newest_epoch_checkpoints_are_kept(corpus, tmp_path):
    """epoch_N.pt holds the optimiser state: training keeps the newest few, plus best and last."""
    train(corpus, tmp_path / "kept", total_steps=1000, keep_epoch_checkpoints=2)
    assert [n for n, _ in numbered_checkpoints(tmp_path / "kept", "epoch")] == [4, 5]
    assert {"best_model.pt", "last.pt"} <= {p.name for p in (tmp_path / "kept").glob("*.pt")}
    train(corpus, tmp_path / "all", total_steps=1000, keep_epoch_checkpoints=0)
    assert [n for n, _ in numbered_checkpoints(tmp_path / "all", "epoch")] == [1, 2, 3, 4, 5]
    assert load_config(None, []).training.keep_epoch_checkpoints == 2   # bounded by default


def test_loss_decreases_and_metrics_are_logged(corpus, tmp_path):
    _, result = train(corpus, tmp_path, noisy=False, total_steps=40, num_epochs=20)
    records = read_metrics(tmp_path)
    train_losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert train_losses[-1] < train_losses[0] * 0.7
    first = next(r for r in records if r["kind"] == "train")
    for key in ("epoch", "loss", "avg_loss", "lr", "sessions_per_s", "tokens_per_s",
                "padding_fraction"):
        assert key in first
    assert any(r["kind"] == "val" for r in records)
    assert result.best_val_loss is not None


def test_schedule_warms_up_then_decays_to_min_lr():
    param = torch.nn.Parameter(torch.zeros(2, 2))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = build_scheduler(optimizer, lr=1.0, min_lr=0.1, total_steps=20, warmup_steps=5)
    lrs = []
    for _ in range(25):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.2) and lrs[4] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(lrs[4:]))


def test_no_weight_decay_on_biases_and_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    groups = build_optimizer(model, 1e-3, 0.01, torch.device("cpu")).param_groups
    assert [len(g["params"]) for g in groups] == [1, 3]
    assert groups[1]["weight_decay"] == 0.0


def test_sigterm_saves_and_reports_interrupted(corpus, tmp_path):
    torch.manual_seed(0)
    detector = ToyDetector()
    model = detector.build_model(corpus.vocab, corpus.window)

    def on_step(trainer):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(detector, model, config_for(tmp_path), corpus, None,
                      device=torch.device("cpu"), output_dir=tmp_path, on_step=on_step,
                      log=lambda message: None)
    result = trainer.fit()
    assert result.interrupted and result.step == 2
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert (tmp_path / "checkpoint_step_2.pt").is_file()
    assert signal.getsignal(signal.SIGTERM) is not trainer._on_signal


def _ddp_worker(rank, world, store, root, out, queue):
    # A file store rendezvous: no TCP port to race other processes for.
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                                         world_size=world)
    try:
        corpus = open_corpus(root)     # prepared by the test: two writers would race
        torch.manual_seed(0)
        detector = ToyDetector(noisy=False)
        model = detector.build_model(corpus.vocab, corpus.window)
        trainer = Trainer(detector, model, config_for(out, batch_size=4), corpus, corpus,
                          device=torch.device("cpu"), output_dir=out,
                          dist_info=DistInfo(rank, rank, world), log=lambda message: None)
        trainer.fit()
        if rank == 0:
            queue.put({k: v.numpy() for k, v in trainer.raw_model.state_dict().items()})
    finally:
        torch.distributed.destroy_process_group()


def test_two_process_gloo_matches_single_process_on_same_global_batch(tmp_path):
    make_corpus(tmp_path / "ddp")     # prepare once, before the workers read it
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    store = tmp_path / "rendezvous"
    procs = [ctx.Process(target=_ddp_worker,
                         args=(r, 2, store, tmp_path / "ddp", tmp_path / "ddp-out", queue))
             for r in range(2)]
    for proc in procs:
        proc.start()
    ddp_weights = queue.get(timeout=600)   # generous: a loaded 2-core CI machine is slow
    for proc in procs:
        proc.join(timeout=300)
        assert proc.exitcode == 0, f"DDP worker exited with {proc.exitcode}"
    single, _ = train(make_corpus(tmp_path / "single"), tmp_path / "single-out", noisy=False,
                      batch_size=8)
    for key, value in single.raw_model.state_dict().items():
        np.testing.assert_allclose(ddp_weights[key], value.numpy(), rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "ddp-out" / "rank1").exists()


def test_out_of_memory_names_the_batch_and_the_fix(corpus, tmp_path, monkeypatch):
    detector = ToyDetector()
    model = detector.build_model(corpus.vocab, corpus.window)

    def explode(model, batch):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(detector, "training_loss", explode)
    trainer = Trainer(detector, model, config_for(tmp_path), corpus, None,
                      device=torch.device("cpu"), output_dir=tmp_path, log=lambda m: None)
    from radar.errors import RadarError

    with pytest.raises(RadarError) as info:
        trainer.fit()
    message = str(info.value)
    assert "training.batch_size=8" in message
    assert "--set training.batch_size=4" in message
    assert "--set training.grad_accum_steps=2" in message


def metric_keys(out):
    return [(r["kind"], r["step"], r["epoch"]) for r in read_metrics(out)]


def test_auto_resume_takes_the_furthest_valid_checkpoint_after_a_crash(corpus, tmp_path):
    """A kill -9 leaves last.pt stale, the newest file not the furthest, one checkpoint
    cut short and a temp file behind: resume skips the damaged one (saying so), goes on
    from the furthest, removes the temp file and ends as an uninterrupted run."""
    from radar.checkpoint import resolve_resume

    straight, _ = train(corpus, tmp_path / "a")
    crashed = tmp_path / "b"
    train(corpus, crashed)
    for name in ("checkpoint_step_12.pt", "best_model.pt"):      # killed before these
        (crashed / name).unlink()
    (crashed / "last.pt").write_bytes((crashed / "checkpoint_step_4.pt").read_bytes())
    damaged = crashed / "epoch_2.pt"                       # step 10: the furthest
    damaged.write_bytes(damaged.read_bytes()[:1000])
    os.utime(crashed / "checkpoint_step_4.pt")             # the newest file, step 4 only
    (crashed / ".checkpoint_step_12.pt.x1y2.tmp").write_bytes(b"partial")
    warnings = []
    start = resolve_resume("auto", crashed, warn=warnings.append)
    assert start.name == "checkpoint_step_8.pt"
    assert len(warnings) == 1 and "epoch_2.pt" in warnings[0]
    resumed, final = train(corpus, crashed, resume=start)
    assert final.step == 12 and not list(crashed.glob(".*.tmp"))
    for key, value in weights(straight.raw_model).items():
        torch.testing.assert_close(resumed.raw_model.state_dict()[key], value)
    assert metric_keys(crashed) == metric_keys(tmp_path / "a")


def test_resume_at_an_epoch_end_repeats_no_metrics_record(corpus, tmp_path):
    """Step 5 ends epoch 1 and is also a save and validation step: the step checkpoint
    is written before the epoch-end validation, so a resume from it must keep only what
    the file held when it was saved."""
    every5 = {"save_interval": 5, "eval_interval": 5}
    train(corpus, tmp_path / "a", **every5)
    train(corpus, tmp_path / "b", stop_at=7, **every5)
    train(corpus, tmp_path / "b", resume=tmp_path / "b" / "checkpoint_step_5.pt", **every5)
    expected = metric_keys(tmp_path / "a")
    assert metric_keys(tmp_path / "b") == expected
    assert len(expected) == len(set(expected))


def test_a_fresh_run_in_a_used_folder_starts_its_metrics_over(corpus, tmp_path):
    train(corpus, tmp_path)
    first = metric_keys(tmp_path)
    train(corpus, tmp_path)
    assert metric_keys(tmp_path) == first


def test_auto_resume_without_a_usable_checkpoint_is_one_clear_error(tmp_path):
    from radar.checkpoint import resolve_resume
    from radar.errors import RadarError

    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    warnings = []
    with pytest.raises(RadarError, match="no usable checkpoint"):
        resolve_resume("auto", tmp_path, warn=warnings.append)
    assert "last.pt" in warnings[0]


def test_resume_with_another_vocabulary_names_the_file_and_the_mismatch(corpus, tmp_path):
    from radar.errors import RadarError

    train(corpus, tmp_path, total_steps=2)
    other = SessionCorpus(corpus.days, EventVocab(np.arange(1, 9)), window=16)
    with pytest.raises(RadarError) as info:
        train(other, tmp_path, resume=tmp_path / "last.pt")
    message = str(info.value)
    assert str(tmp_path / "last.pt") in message and "embed.weight is [" in message
    assert "vocabulary" in message and "\n" not in message


def test_load_model_state_reports_missing_unknown_and_resized_weights(tmp_path):
    from radar.checkpoint import load_model_state
    from radar.errors import RadarError

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    state = torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict()
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(RadarError) as info:
        load_model_state(model, state, tmp_path / "m.pt", "the toy model")
    message = str(info.value)
    assert message.startswith(f"checkpoint {tmp_path / 'm.pt'} does not fit the toy model")
    assert "0.weight is [3, 4] in the checkpoint, [4, 4] here" in message
    assert "2 weight(s) missing: 1.weight, 1.bias" in message
    assert "1 unknown weight(s): extra.weight" in message
    good = torch.nn.Linear(4, 4)
    load_model_state(good, torch.nn.Linear(4, 4).state_dict(), "x.pt", "a linear layer")
