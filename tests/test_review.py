"""radar review: the review CSV is a label file; filled in, read_labels reads exactly it."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from radar.cli import cli
from radar.data.labels import read_labels
from radar.errors import RadarError
from radar.report.review import pick_sessions, review_run
from radar.results import write_results
from radar.rundir import REVIEW as REVIEW_FILE
from tests.toy import write_day

DAY = "preprocessed_logs_2026-01-15.json"
N = 40
FLAGGED = set(range(0, N, 4))                       # 10 flagged sessions


def session_events(i: int) -> list[int]:
    return [1 + (i + j) % 7 for j in range(8)]


def result_record(i: int) -> dict:
    key = "=2+3" if i == 36 else f"req-{i}"      # a formula, were it not quoted
    return {"file": DAY, "session_id": i, "session_key": key,
            "service_name": "gateway" if i % 2 else "research",
            "anomaly_score": float(i), "is_anomaly": i in FLAGGED, "threshold": 0.5,
            "has_error": i % 5 == 0, "has_warn": False, "length": 8,
            "top_positions": [{"position": 6, "event_id": session_events(i)[6], "kind": "event",
                               "rank": 9, "probability": 0.001}]}


@pytest.fixture
def run_dir(tmp_path):
    data = tmp_path / "data"
    write_day(data / DAY, [session_events(i) for i in range(N)])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"detectors": ["logbert"], "data": {"preprocessed_dir": str(data)}}))
    write_results(run / "anomaly_results.json", (result_record(i) for i in range(N)))
    return run


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_pick_keeps_the_top_flagged_and_a_seeded_sample_of_the_rest(run_dir):
    results = run_dir / "anomaly_results.json"
    pick = pick_sessions(results, top=3, sample_normal=5, seed=1)
    assert [r["session_id"] for r in pick.flagged] == [36, 32, 28]
    assert (pick.n_sessions, pick.n_flagged) == (N, len(FLAGGED))
    normal = [r["session_id"] for r in pick.normal]
    assert len(normal) == 5 and not set(normal) & FLAGGED
    assert normal == sorted(normal, reverse=True)            # highest score first
    assert normal == [r["session_id"] for r in pick_sessions(results, top=3, sample_normal=5,
                                                             seed=1).normal]
    samples = {tuple(sorted(r["session_id"] for r in pick_sessions(
        results, top=0, sample_normal=5, seed=seed).normal)) for seed in range(6)}
    assert len(samples) > 1                                  # the seed changes the draw
    everything = pick_sessions(results, top=100, sample_normal=100)
    assert len(everything.flagged) == len(FLAGGED) and len(everything.normal) == N - 10


def test_review_csv_starts_as_a_label_file_with_context_columns(run_dir):
    written = review_run(run_dir, top=4, sample_normal=2)
    rows = read_rows(run_dir / REVIEW_FILE)
    assert rows[0] == ["file", "session_id", "label", "session_key", "service_name",
                       "anomaly_score", "severity", "is_anomaly", "has_error", "explanation",
                       "log_lines"]
    assert (written.flagged, written.normal, written.n_flagged) == (4, 2, 10)
    body = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [row["session_id"] for row in body[:4]] == ["36", "32", "28", "24"]
    assert all(row["label"] == "" for row in body)
    top = body[0]
    assert (top["file"], top["session_key"], top["anomaly_score"], top["is_anomaly"],
            top["has_error"]) == (DAY, "'=2+3", "36.0", "1", "0")
    assert top["explanation"] == f"pos 6: event {session_events(36)[6]} rank 9 p=0.001"
    lines = top["log_lines"].split("\n")
    assert len(lines) == 5 and f"> 6: line {session_events(36)[6]}" in lines
    assert [row["is_anomaly"] for row in body[4:]] == ["0", "0"]


def test_filled_review_reads_back_as_exactly_the_labels_given(run_dir):
    review_run(run_dir, top=6, sample_normal=4, seed=3)
    rows = read_rows(run_dir / REVIEW_FILE)
    given = ["1", "Anomaly", "yes", "TRUE", "", "0", "normal", "No", "false", ""]
    for row, label in zip(rows[1:], given):
        row[2] = label
    with open(run_dir / "filled.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    table = read_labels(run_dir / "filled.csv")
    expected = {(DAY, int(row[1])): int(label.lower() in {"1", "anomaly", "yes", "true"})
                for row, label in zip(rows[1:], given) if label}
    assert table.by_file_session == expected and table.unreviewed == 2
    assert table.describe().endswith("8 labelled sessions (4 anomalous); 2 rows not yet reviewed")
    ids = np.asarray([int(row[1]) for row in rows[1:]])
    assert table.lookup(DAY, ids).tolist() == [1, 1, 1, 1, -1, 0, 0, 0, 0, -1]


def test_a_label_that_is_no_label_names_the_line(run_dir):
    review_run(run_dir, top=2)
    rows = read_rows(run_dir / REVIEW_FILE)
    rows[2][2] = "maybe"
    with open(run_dir / "filled.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(RadarError, match=r"filled.csv, record 3: label 'maybe'"):
        read_labels(run_dir / "filled.csv")


def test_cli_writes_once_and_never_overwrites_labels_without_force(run_dir):
    runner = CliRunner()
    out = runner.invoke(cli, ["review", str(run_dir), "--top", "3", "--sample-normal", "2"])
    assert out.exit_code == 0, out.output
    assert "3 flagged sessions (of 10) and 2 unflagged drawn at random, of 40 scored" in \
        out.output
    assert f"radar run --labels {run_dir / REVIEW_FILE}" in out.output
    again = runner.invoke(cli, ["review", str(run_dir)])
    assert again.exit_code == 1 and "exists and may hold labels" in again.output
    forced = runner.invoke(cli, ["review", str(run_dir), "--force", "--lines", "0"])
    assert forced.exit_code == 0
    assert len(read_rows(run_dir / REVIEW_FILE)) == 11
    assert all(row[-1] == "" for row in read_rows(run_dir / REVIEW_FILE)[1:])
    missing = runner.invoke(cli, ["review", str(run_dir / "nope")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
