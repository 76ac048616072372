"""`radar convert`: public benchmark formats into day files plus labels, and `--labels`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.commands.jobs import load_job_config
from radar.data.labels import read_labels

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "hdfs_deeplog"


def _day(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def _labels(path: Path) -> dict[tuple[str, int], int]:
    table = read_labels(path)
    return table.by_file_session


def test_deeplog_split_labels_and_keys(tmp_path):
    normal = tmp_path / "normal"
    normal.write_text("".join(f"5 5 22 {i % 7 + 1} 11 9\n" for i in range(40)) + "\n")
    abnormal = tmp_path / "abnormal"
    abnormal.write_text("5 22 5\n5 22\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["convert", "deeplog", "--normal", str(normal),
                                      "--abnormal", str(abnormal), "--out", str(out),
                                      "--train-fraction", "0.5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    train = _day(out / "preprocessed_logs_2000-01-01.json")
    test = _day(out / "preprocessed_logs_2000-01-02.json")
    assert len(train) + len(test) == 42            # the blank line is no session
    assert 10 < len(train) < 30
    labels = _labels(out / "labels.csv")
    assert all(labels[("preprocessed_logs_2000-01-01.json", r["session_id"])] == 0
               for r in train)
    test_labels = [labels[("preprocessed_logs_2000-01-02.json", r["session_id"])] for r in test]
    assert sum(test_labels) == 2
    abnormal_keys = {r["session_key"] for r, y in zip(test, test_labels) if y}
    assert abnormal_keys == {"abnormal:1", "abnormal:2"}
    assert test[-1]["event_sequence"] == [5, 22]
    assert test[-1]["token_ids"] == [101, 5, 22, 102]
    # The same seed gives the same split.
    again = tmp_path / "again"
    CliRunner().invoke(cli, ["convert", "deeplog", "--normal", str(normal), "--abnormal",
                             str(abnormal), "--out", str(again), "--seed", "1"])
    assert _day(again / "preprocessed_logs_2000-01-01.json") == train
    assert CliRunner().invoke(cli, ["validate", str(out)]).exit_code == 0


def test_deeplog_bad_line_names_file_and_line(tmp_path):
    normal = tmp_path / "normal"
    normal.write_text("1 2 3\n1 two 3\n")
    result = CliRunner().invoke(cli, ["convert", "deeplog", "--normal", str(normal),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"{normal}, record 2: not a key sequence" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "labels.csv").exists()


def test_hdfs_100k_writes_block_labels_matching_sessions(tmp_path):
    rows = [{"block_id": f"blk_{i}", "split": "train" if i % 3 else "test",
             "label": int(i % 5 == 0), "events": [1, 2, i % 4 + 3]} for i in range(30)]
    source = tmp_path / "sessions.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["convert", "hdfs-100k", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "anomaly_label.csv").open() as handle:
        block = {row["BlockId"]: row["Label"] for row in csv.DictReader(handle)}
    assert block == {r["block_id"]: "Anomaly" if r["label"] else "Normal" for r in rows}
    by_key = read_labels(out / "anomaly_label.csv").by_key
    day = _day(out / "preprocessed_logs_2000-01-02.json")
    keys = [r["session_key"] for r in day]
    table = read_labels(out / "labels.csv")
    from_ids = table.lookup("preprocessed_logs_2000-01-02.json",
                            np.array([r["session_id"] for r in day]))
    assert from_ids.tolist() == [by_key[k] for k in keys]


def test_labels_option_trains_on_labelled_normal_sessions_unless_told(tmp_path):
    labels = tmp_path / "labels.csv"
    assert load_job_config(None, (), labels=str(labels)).data.train_filter == "labels"
    assert load_job_config(None, ()).data.train_filter == "all"      # no labels: every session
    kept = load_job_config(None, ("data.train_filter=no_error_no_warn",), labels=str(labels))
    assert kept.data.train_filter == "no_error_no_warn"
    assert kept.data.label_file == str(labels)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/hdfs_deeplog is absent")
def test_deeplog_files_convert_whole(tmp_path):
    from radar.data.convert import convert_key_sequences

    counts = convert_key_sequences([SHARED / "hdfs_train"], [SHARED / "hdfs_test_abnormal"],
                                   tmp_path, train_fraction=0.5, seed=0)
    assert counts["train"] + counts["test"] == 4855 + 16838
    labels = _labels(tmp_path / "labels.csv")
    assert sum(labels.values()) == 16838
