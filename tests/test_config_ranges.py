"""Numeric range checks of the training and detection sections: one line naming the key."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.config import load_config
from radar.errors import ConfigError


@pytest.mark.parametrize("override, key", [
    ("training.batch_size=0", "training.batch_size"),
    ("training.batch_size=-4", "training.batch_size"),
    ("training.learning_rate=nan", "training.learning_rate"),
    ("training.learning_rate=.inf", "training.learning_rate"),
    ("training.learning_rate=-1", "training.learning_rate"),
    ("training.learning_rate=0", "training.learning_rate"),
    ("training.min_lr=1.0", "training.min_lr"),          # above learning_rate
    ("training.weight_decay=-0.1", "training.weight_decay"),
    ("training.num_epochs=0", "training.num_epochs"),
    ("training.total_steps=0", "training.total_steps"),
    ("training.warmup_ratio=1.5", "training.warmup_ratio"),
    ("training.max_grad_norm=nan", "training.max_grad_norm"),
    ("training.grad_accum_steps=0", "training.grad_accum_steps"),
    ("training.log_interval=0", "training.log_interval"),
    ("training.save_interval=-1", "training.save_interval"),
    ("training.eval_interval=-1", "training.eval_interval"),
    ("training.keep_checkpoints=-1", "training.keep_checkpoints"),
    ("training.num_workers=-1", "training.num_workers"),
    ("training.seed=-1", "training.seed"),
    ("detection.threshold_percentile=101", "detection.threshold_percentile"),
    ("detection.threshold_percentile=nan", "detection.threshold_percentile"),
    ("detection.threshold_value=.nan", "detection.threshold_value"),
    ("detection.batch_size=0", "detection.batch_size"),
])
def test_out_of_range_numbers_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"^{key} must be a finite number"):
        load_config(None, [override])


def test_edges_that_mean_off_or_default_are_accepted():
    config = load_config(None, ["training.save_interval=0", "training.eval_interval=0",
                                "training.keep_checkpoints=0", "training.max_grad_norm=0",
                                "training.warmup_ratio=0", "training.min_lr=0",
                                "detection.threshold_value=2.5"])
    assert config.training.save_interval == 0 and config.detection.threshold_value == 2.5
    assert load_config(None, []).detection.threshold_value is None


def test_cli_reports_a_bad_override_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data", str(tmp_path), "--set",
                                      "training.batch_size=0"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: training.batch_size must be a finite number >= 1, got 0"]
