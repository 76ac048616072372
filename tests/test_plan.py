"""The plan printed before training: model size, device, steps, time, and a CPU warning."""

from __future__ import annotations

import torch

from radar.config import load_config, shipped_config
from radar.plan import describe_plan, estimate_training, measured_flops

CPU = torch.device("cpu")
RATE = 2e10          # FLOP/s, given so the numbers do not depend on this machine


def test_bert_base_on_cpu_warns_and_names_the_small_model():
    config = load_config(shipped_config("training_config_test"))
    lines = describe_plan(config, 50_000, CPU, rate=RATE, mean_length=60)
    assert lines[0].startswith("plan: train logbert (86.8M parameters) on cpu (")
    assert "4,689 optimiser steps" in lines[0]           # 3 epochs x 1,563 batches of 32
    assert lines[1].startswith("plan: estimated training time ") and "days" in lines[1]
    warning = lines[2]
    assert warning.startswith("warning: logbert at this size would train for about ")
    assert ("--set models.logbert.hidden_size=64 --set models.logbert.num_hidden_layers=2 "
            "--set models.logbert.num_attention_heads=4 "
            "--set models.logbert.intermediate_size=128") in warning
    assert "max_position" not in warning and len(lines) == 3


def test_the_demo_model_on_cpu_needs_no_warning():
    config = load_config(shipped_config("demo"))
    lines = describe_plan(config, 500, CPU, rate=RATE, mean_length=14)
    assert len(lines) == 2 and not any(line.startswith("warning") for line in lines)


def test_steps_stop_at_total_steps_or_the_epochs_and_time_grows_with_the_model():
    small = load_config(None, ["training.batch_size=10", "training.num_epochs=2",
                               "training.grad_accum_steps=2", "training.total_steps=1000",
                               "models.logbert.hidden_size=64",
                               "models.logbert.num_hidden_layers=1",
                               "models.logbert.num_attention_heads=4",
                               "models.logbert.intermediate_size=128",
                               "data.max_seq_length=66"])
    estimate = estimate_training(small, "logbert", 1000, CPU, RATE)
    assert estimate.steps == 2 * (100 // 2) and estimate.tokens_per_step == 10 * 2 * 66
    capped = estimate_training(small, "logbert", 10**6, CPU, RATE)
    assert capped.steps == 1000
    bigger = load_config(None, [*(f"{k}={v}" for k, v in [
        ("training.batch_size", 10), ("training.num_epochs", 2),
        ("training.grad_accum_steps", 2), ("training.total_steps", 1000),
        ("data.max_seq_length", 66)])])                   # BERT-base
    assert estimate_training(bigger, "logbert", 1000, CPU, RATE).seconds > 10 * estimate.seconds


def test_the_device_rate_is_measured():
    assert measured_flops(CPU, seconds=0.02) > 1e6
