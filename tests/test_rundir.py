"""RunDir: a run's config read back with its relative paths pointing where the run saw them."""

from __future__ import annotations

import os

import yaml

from radar.rundir import RunDir


def write_run(folder, output_dir, data="runs/demo/data"):
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "output_dir": output_dir, "detectors": ["logbert"],
        "data": {"preprocessed_dir": data, "cache_dir": "runs/demo/cache",
                 "label_file": "/abs/labels.csv"},
        "source": {"index": "runs/demo/data/source-index.jsonl"}}))
    return folder


def test_relative_paths_resolve_against_the_folder_the_run_started_from(tmp_path, monkeypatch):
    run = write_run(tmp_path / "work" / "runs" / "demo", "runs/demo")
    monkeypatch.chdir(tmp_path)             # anywhere but the launch folder
    config = RunDir.open(run).config()
    assert config["data"]["preprocessed_dir"] == str(tmp_path / "work/runs/demo/data")
    assert config["data"]["cache_dir"] == str(tmp_path / "work/runs/demo/cache")
    assert config["source"]["index"] == str(tmp_path / "work/runs/demo/data/source-index.jsonl")
    assert config["data"]["label_file"] == "/abs/labels.csv"
    # The same answer from the launch folder, through a relative run path.
    monkeypatch.chdir(tmp_path / "work")
    assert RunDir.open("runs/demo").config()["data"]["preprocessed_dir"] == str(
        tmp_path / "work/runs/demo/data")


def test_a_moved_run_keeps_its_paths_relative_to_the_working_folder(tmp_path, monkeypatch):
    run = write_run(tmp_path / "elsewhere" / "renamed", "runs/demo")
    monkeypatch.chdir(tmp_path)
    config = RunDir.open(run).config()
    assert config["data"]["preprocessed_dir"] == "runs/demo/data"
    absolute = write_run(tmp_path / "abs", str(tmp_path / "abs"))
    assert RunDir.open(absolute).config()["data"]["cache_dir"] == "runs/demo/cache"
    dotted = write_run(tmp_path / "x" / "runs" / "up", "../runs/up")
    assert RunDir.open(dotted).config()["data"]["preprocessed_dir"] == "runs/demo/data"
    assert os.getcwd() == str(tmp_path)
