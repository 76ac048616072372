"""Scoring day files over several processes (radar.shard) gives what one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from radar import shard
from radar.cli import cli
from radar.data.synth import generate
from radar.errors import RadarError
from tests.conftest import tiny_demo_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained LogBERT, four day files to score, and one process's results."""
    root = tmp_path_factory.mktemp("shard")
    generate(root / "data", days=4, sessions=60, anomaly_rate=0.1, seed=5)
    tiny_demo_run(root)
    checkpoint = root / "run" / "best_model.pt"
    single = root / "single.json"
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(checkpoint), "--input",
                                      str(root / "data"), "--output", str(single)])
    assert result.exit_code == 0, result.output
    return root, checkpoint, json.loads(single.read_text())


def same_records(merged: list[dict], single: list[dict]) -> None:
    assert len(merged) == len(single) == 240
    for ours, theirs in zip(merged, single):
        assert (ours["file"], ours["session_id"]) == (theirs["file"], theirs["session_id"])
        assert ours["anomaly_score"] == pytest.approx(theirs["anomaly_score"], rel=1e-5)
        assert ours["is_anomaly"] == theirs["is_anomaly"]


def test_three_processes_merge_into_the_single_process_results(trained, tmp_path):
    root, checkpoint, single = trained
    out = tmp_path / "merged.json"
    assert shard.main(["--checkpoint", str(checkpoint), "--input", str(root / "data"),
                       "--output", str(out), "--workers", "3"]) == 0
    same_records(json.loads(out.read_text()), single)
    assert not (tmp_path / "merged.json.parts").exists()       # parts removed after the merge


def test_torchrun_ranks_merge_into_the_single_process_results(trained, tmp_path):
    root, checkpoint, single = trained
    out = tmp_path / "ranks.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "radar.shard", "--checkpoint", str(checkpoint), "--input", str(root / "data"),
         "--output", str(out), "--format", "jsonl"],
        check=False, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    same_records([json.loads(line) for line in out.read_text().splitlines()], single)


def test_files_are_balanced_by_bytes(tmp_path):
    sizes = {"a": 900, "b": 500, "c": 400, "d": 100, "e": 100}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    shares = shard.assign_files([tmp_path / name for name in sizes], 2)
    assert [[p.name for p in share] for share in shares] == [["a", "d"], ["b", "c", "e"]]
    assert shard.assign_files([tmp_path / "a"], 3)[1:] == [[], []]


def test_merge_refuses_missing_parts_and_parts_of_another_model(trained, tmp_path):
    root, checkpoint, _ = trained
    job = shard.ScoringJob(str(checkpoint), False, str(root / "data"), tmp_path / "r.json")
    days = sorted((root / "data").glob("preprocessed_logs_*.json"))
    with pytest.raises(RadarError, match="4 day file\\(s\\) have no scored part"):
        shard.merge_parts(job, days)
    job.claim_parts_dir()
    other = shard.ScoringJob(str(root / "run" / "last.pt"), False, str(root / "data"),
                             tmp_path / "r.json")
    with pytest.raises(RadarError, match="parts scored with another model"):
        other.claim_parts_dir()
    Path(job.parts_dir / "source.txt").unlink()
