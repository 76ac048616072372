"""`radar synth`, `radar validate`, `radar split` and `radar prepare` through the CLI."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import shared_data

from radar.cli import cli
from radar.data.synth import generate


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, days=3, sessions=400, seed=11)
    return out, summary


def _expected(summary):
    records = [r for path in summary.files for r in json.loads(path.read_text("utf-8"))]
    return records, Counter(r["service_name"] for r in records)


def test_synth_command_writes_files_and_labels(tmp_path):
    result = invoke("synth", tmp_path / "demo", "--days", 2, "--sessions", 120, "--seed", 5,
                    "--anomaly-rate", 0.2)
    assert result.exit_code == 0, result.output
    assert "wrote 2 day files, 240 sessions" in result.stdout
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "labels.csv", "preprocessed_logs_2025-02-24.json", "preprocessed_logs_2025-02-25.json",
        "templates.tsv"]
    labels = (tmp_path / "demo" / "labels.csv").read_text().splitlines()
    assert len(labels) == 241


def test_synth_command_no_pad_and_bad_options(tmp_path):
    result = invoke("synth", tmp_path, "--days", 1, "--sessions", 50, "--no-pad",
                    "--max-seq-length", 40)
    assert result.exit_code == 0, result.output
    day = json.loads((tmp_path / "preprocessed_logs_2025-02-24.json").read_text("utf-8"))
    assert len({len(r["token_ids"]) for r in day}) == 1 and len(day[0]["token_ids"]) <= 40
    assert invoke("synth", tmp_path, "--anomaly-rate", 2).exit_code == 2
    result = invoke("synth", tmp_path / "fresh", "--start-date", "tomorrow")
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.stderr


def test_validate_json_matches_what_was_generated(synth_dir):
    out, summary = synth_dir
    records, services = _expected(summary)
    result = invoke("validate", out, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_files"] == 3 and data["n_sessions"] == 1200
    assert (data["first_day"], data["last_day"], data["missing_days"]) == (
        "2025-02-24", "2025-02-26", 0)
    assert {name: s["sessions"] for name, s in data["services"].items()} == dict(services)
    assert data["error_share"] == round(summary.n_has_error / 1200, 4)
    assert data["warn_share"] == round(summary.n_has_warn / 1200, 4)
    lengths = [len(r["event_sequence"]) for r in records]
    assert data["sequence_length"]["max"] == max(lengths) == summary.max_events
    assert data["sequence_length"]["min"] == min(lengths)
    assert data["sequence_length"]["mean"] == round(sum(lengths) / len(lengths), 2)
    assert data["n_over_max_length"] == summary.n_over_max_len
    assert data["vocabulary"]["distinct_events"] == len(
        {e for r in records for e in r["event_sequence"]})
    assert data["token_layout"] == {"ok": 1200, "mismatch": 0, "examples": []}
    assert data["bad_records"]["total"] == 0 and data["unreadable_files"] == []
    assert data["bytes"]["total"] == sum(p.stat().st_size for p in summary.files)
    assert [f["n_sessions"] for f in data["files"]] == [400, 400, 400]


def test_validate_in_parallel_gives_the_same_answer(synth_dir):
    out, _ = synth_dir
    one = invoke("validate", out, "--json", "--workers", 1)
    two = invoke("validate", out, "--json", "--workers", 2)
    assert one.exit_code == two.exit_code == 0
    assert json.loads(one.stdout) == json.loads(two.stdout)


def test_validate_prints_tables(synth_dir):
    out, _ = synth_dir
    result = invoke("validate", out, "--vocab-size", 1000)
    assert result.exit_code == 0, result.output
    for text in ("dataset", "services", "gateway", "1,200", "event ids >= 1000",
                 "preprocessed_logs_2025-02-26.json"):
        assert text in result.stdout


def test_validate_truncated_file_exits_1_naming_file_and_offset(synth_dir, tmp_path):
    _, summary = synth_dir
    good = summary.files[0].read_bytes()
    broken = tmp_path / "preprocessed_logs_2025-03-01.json"
    broken.write_bytes(good[:len(good) // 2])
    (tmp_path / "preprocessed_logs_2025-03-02.json").write_bytes(good)
    result = invoke("validate", tmp_path, "--json")
    assert result.exit_code == 1
    assert broken.name in result.stderr and "byte" in result.stderr
    data = json.loads(result.stdout)
    assert [f["path"] for f in data["unreadable_files"]] == [str(broken)]
    assert data["unreadable_files"][0]["offset"] is not None
    assert 0 < data["files"][0]["n_sessions"] < 400 and data["files"][1]["n_sessions"] == 400


def test_validate_reports_bad_records_and_strict_fails(tmp_path):
    records = [
        {"session_id": 0, "event_sequence": [1, 2], "token_ids": [101, 1, 2, 102],
         "attention_mask": [1, 1, 1, 1], "has_error": False, "has_warn": False,
         "service_name": "gateway", "original_logs": ["a", "b"]},
        {"session_id": 1, "event_sequence": "oops", "has_error": False, "has_warn": False,
         "service_name": "gateway"},
        {"session_id": 2, "event_sequence": [3], "token_ids": [101, 4, 102],
         "attention_mask": [1, 1, 1], "has_error": True, "has_warn": False,
         "service_name": "auth"},
    ]
    path = tmp_path / "preprocessed_logs_2025-02-24.json"
    path.write_text(json.dumps(records))
    result = invoke("validate", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_sessions"] == 2 and data["bad_records"]["total"] == 1
    assert data["bad_records"]["examples"][0]["index"] == 1
    assert data["token_layout"]["mismatch"] == 1
    result = invoke("validate", path)
    assert result.exit_code == 0 and "bad records" in result.stdout
    result = invoke("validate", path, "--strict")
    assert result.exit_code == 1 and path.name in result.stderr


def test_validate_missing_folder_exits_1(tmp_path):
    result = invoke("validate", tmp_path / "nowhere")
    assert result.exit_code == 1
    assert "does not exist" in result.stderr and "radar synth" in result.stderr


def test_split_command_writes_lists(synth_dir, tmp_path):
    out, summary = synth_dir
    result = invoke("split", out, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "2 train, 1 validation" in result.stdout
    assert (tmp_path / "val_files.txt").read_text() == f"{summary.files[-1].resolve()}\n"
    assert len((tmp_path / "train_files.txt").read_text().splitlines()) == 2
    result = invoke("split", out, "--out", tmp_path, "--random", "--seed", 3,
                    "--limit-files", 2)
    assert result.exit_code == 0, result.output
    assert "1 train, 1 validation" in result.stdout and "random, seed 3" in result.stdout


def test_split_command_needs_two_files(synth_dir, tmp_path):
    _, summary = synth_dir
    result = invoke("split", summary.files[0], "--out", tmp_path)
    assert result.exit_code == 1
    assert "at least 2 day files" in result.stderr
    assert not (tmp_path / "train_files.txt").exists()


def test_prepare_command_prepares_then_skips(synth_dir, tmp_path):
    out, _ = synth_dir
    cache = tmp_path / "cache"
    result = invoke("prepare", out, "--cache-dir", cache, "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "3 prepared, 0 already up to date, 1,200 sessions" in result.stdout
    assert any(cache.rglob("*"))
    result = invoke("prepare", out, "--cache-dir", cache, "--workers", 1)
    assert result.exit_code == 0, result.output
    assert "0 prepared, 3 already up to date" in result.stdout


def test_prepare_command_truncated_file_exits_1(synth_dir, tmp_path):
    _, summary = synth_dir
    good = summary.files[0].read_bytes()
    broken = tmp_path / "data" / "preprocessed_logs_2025-03-01.json"
    broken.parent.mkdir()
    broken.write_bytes(good[:len(good) // 3])
    result = invoke("prepare", broken.parent, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 1
    assert broken.name in result.stderr and "byte" in result.stderr


def test_validate_on_a_slice_of_public_hdfs_sessions(tmp_path):
    source = shared_data("hdfs_100k/sessions.jsonl")
    rows = [json.loads(line) for line in source.read_text().splitlines()[:300]]
    day = [{"session_id": i, "event_sequence": row["events"],
            "token_ids": [101, *row["events"][:510], 102],
            "attention_mask": [1] * (min(len(row["events"]), 510) + 2),
            "has_error": False, "has_warn": False, "service_name": "hdfs",
            "session_key": row["block_id"]} for i, row in enumerate(rows)]
    path = tmp_path / "preprocessed_logs_2008-11-09.json"
    path.write_text(json.dumps(day))
    result = invoke("validate", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_sessions"] == 300
    assert data["vocabulary"]["distinct_events"] == len({e for r in rows for e in r["events"]})
    assert data["sequence_length"]["max"] == max(len(r["events"]) for r in rows)


def test_validate_checks_original_logs_and_session_key_types(tmp_path):
    from test_reader import make_sessions, write_day

    sessions = make_sessions(4, keys=True)
    sessions[1]["original_logs"] = "one string, not a list"
    sessions[2]["session_key"] = 7
    write_day(tmp_path / "preprocessed_logs_2025-01-01.json", sessions)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["bad_records"]["by_kind"] == {"wrong_type": 2} and data["n_sessions"] == 2


def test_validate_and_prepare_report_repeated_session_ids(tmp_path):
    from test_reader import make_sessions, write_day

    sessions = make_sessions(5)
    sessions[3]["session_id"] = sessions[1]["session_id"]
    data = tmp_path / "data"
    write_day(data / "preprocessed_logs_2025-01-01.json", sessions)
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(data), "--json"])
    assert result.exit_code == 0, result.output
    repeats = json.loads(result.stdout)["duplicate_session_ids"]
    assert repeats["total"] == 1 and repeats["files"][0]["example"] == 1
    table = runner.invoke(cli, ["validate", str(data)], terminal_width=200)
    assert "1 sessions repeat a session_id of the same day (e.g. 1)" in table.output
    for _ in range(2):                       # prepared, then up to date: both say so
        prepared = runner.invoke(cli, ["prepare", str(data), "--cache-dir",
                                       str(tmp_path / "cache")], terminal_width=200)
        assert prepared.exit_code == 0, prepared.output
        assert "1 sessions repeat a session_id" in prepared.output
