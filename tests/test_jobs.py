"""End to end through the CLI: `radar run`, `radar train --resume`, `radar detect`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.config import shipped_config
from radar.data.synth import generate

TINY = ["model.hidden_size=32", "model.num_hidden_layers=1", "model.num_attention_heads=2",
        "model.intermediate_size=64", "training.total_steps=6", "training.log_interval=2",
        "training.save_interval=3", "training.batch_size=32", "detection.batch_size=64",
        "data.max_seq_length=64"]


def run_args(root: Path, *extra: str) -> list[str]:
    args = ["--config", str(shipped_config("demo")), "--data", str(root / "data"),
            "--labels", str(root / "data" / "labels.csv"),
            "--set", f"output_dir={root / 'run'}", "--set", f"data.cache_dir={root / 'cache'}"]
    for item in TINY:
        args += ["--set", item]
    return [*args, *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    generate(root / "data", days=3, sessions=150, anomaly_rate=0.1, seed=3)
    result = CliRunner().invoke(cli, ["run", "--detector", "logbert", *run_args(root)])
    assert result.exit_code == 0, result.output
    return root, result


def test_run_writes_results_summary_config_and_split(trained):
    root, result = trained
    run = root / "run"
    for name in ("config.yaml", "train_files.txt", "val_files.txt", "best_model.pt",
                 "last.pt", "metrics.jsonl", "summary.json", "anomaly_results.json"):
        assert (run / name).is_file(), name
    assert "F1" in result.output and "precision" in result.output
    records = json.loads((run / "anomaly_results.json").read_text())
    assert len(records) == 150                       # the one validation day, every session
    first = records[0]
    for key in ("file", "session_id", "service_name", "anomaly_score", "is_anomaly",
                "has_error", "has_warn", "top_positions"):
        assert key in first
    assert first["file"] == "preprocessed_logs_2025-02-26.json"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["sessions"] == 150
    assert summary["anomalies"] == sum(r["is_anomaly"] for r in records)
    assert 0.0 <= summary["metrics"]["f1"] <= 1.0


def test_detect_reproduces_run_scores_and_threshold_override(trained, tmp_path):
    root, _ = trained
    val_day = root / "data" / "preprocessed_logs_2025-02-26.json"
    out = tmp_path / "results.jsonl"
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(root / "run" / "best_model.pt"),
                                      "--input", str(val_day), "--output", str(out),
                                      "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    detected = [json.loads(line) for line in out.read_text().splitlines()]
    from_run = json.loads((root / "run" / "anomaly_results.json").read_text())
    assert [r["anomaly_score"] for r in detected] == pytest.approx(
        [r["anomaly_score"] for r in from_run], rel=1e-5)

    everything = tmp_path / "all.json"
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(root / "run" / "best_model.pt"),
                                      "--input", str(val_day), "--output", str(everything),
                                      "--threshold", "-1"])
    assert result.exit_code == 0
    assert all(r["is_anomaly"] for r in json.loads(everything.read_text()))


def test_resume_auto_continues_to_more_steps(trained):
    root, _ = trained
    result = CliRunner().invoke(cli, ["train", *run_args(root, "--resume", "auto"),
                                      "--set", "training.total_steps=9"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "resumed from" in output and "at epoch 1, step 6" in output
    steps = [json.loads(line)["step"] for line in
             (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 9


def test_unknown_detector_fails_with_the_list(tmp_path):
    generate(tmp_path / "data", days=2, sessions=20, seed=1)
    result = CliRunner().invoke(cli, ["run", "--detector", "logbrt", *run_args(tmp_path)])
    assert result.exit_code == 2
    assert "unknown detector 'logbrt'; available: deeplog, logbert, lstm, pca, tcn" in result.output
    assert "Traceback" not in result.output


def test_bad_override_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--set", "training.bach_size=4",
                                      "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "did you mean 'training.batch_size'" in result.output


def test_missing_checkpoint_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(tmp_path / "x.pt"),
                                      "--input", str(tmp_path)])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_damaged_input_is_reported_not_silently_dropped(tmp_path):
    generate(tmp_path / "data", days=3, sessions=60, seed=5)
    last = tmp_path / "data" / "preprocessed_logs_2025-02-26.json"
    last.write_bytes(last.read_bytes()[:20000])          # a day cut off mid-record
    result = CliRunner().invoke(cli, ["run", "--detector", "logbert", *run_args(tmp_path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "warning:" in output and "truncated or corrupt at byte" in output
    assert "preprocessed_logs_2025-02-26.json" in output
    records = json.loads((tmp_path / "run" / "anomaly_results.json").read_text())
    assert 0 < len(records) < 60                          # the good prefix was scored
