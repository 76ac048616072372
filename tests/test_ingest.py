"""`radar ingest`: raw log lines into day files that validate, prepare and keep session keys."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SHARED_DATA

from radar.cli import cli
from radar.config import shipped_config
from radar.data.cache import cache_dir_for, open_prepared
from radar.data.cache_build import prepare_files
from radar.data.labels import read_labels
from radar.errors import RadarError
from radar.ingest import IngestOptions, ingest
from radar.ingest.formats import PRESETS, TimeParser
from radar.ingest.grouping import GroupingSpec, KeyGrouper, LogLine, WindowGrouper
from radar.ingest.templates import TemplateStore, parsing_accuracy

LOGHUB = SHARED_DATA / "loghub_2k"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def hdfs_line(day: str, clock: str, level: str, component: str, message: str) -> str:
    return f"{day} {clock} {random.randrange(1, 999)} {level} {component}: {message}"


def write_hdfs_log(path: Path, n_blocks: int = 300, seed: int = 1, day: str = "081109",
                   garbage: int = 0) -> dict[str, list[str]]:
    """An HDFS-format log of interleaved block lifecycles; returns {block: its levels}."""
    rnd = random.Random(seed)
    blocks = {f"blk_{rnd.choice(['', '-'])}{rnd.randrange(10**15)}": [] for _ in range(n_blocks)}
    steps = []
    for block in blocks:
        lines = [("INFO", "dfs.FSNamesystem", (f"BLOCK* NameSystem.allocateBlock: /data/part-"
                  f"{rnd.randrange(999)}. {block}"))]
        for k in range(3):
            node = f"10.251.{rnd.randrange(255)}.{rnd.randrange(255)}"
            lines += [("INFO", "dfs.DataNode$DataXceiver", (f"Receiving block {block} src: "
                       f"/{node}:{rnd.randrange(40000, 60000)} dest: /{node}:50010")),
                      ("INFO", "dfs.DataNode$PacketResponder",
                       f"PacketResponder {k} for block {block} terminating")]
        if rnd.random() < 0.1:
            lines.append(("WARN", "dfs.DataNode$DataXceiver", (f"10.251.1.2:50010:Got exception "
                          f"while serving {block} to /10.251.3.4:")))
        steps.append(lines)
    out, clock = [], 20 * 3600          # 20:00 on ``day``, so the log crosses midnight
    first = dt.datetime.strptime(day, "%y%m%d")
    active: list[list] = []
    while steps or active:              # interleave 20 blocks at a time
        while steps and len(active) < 20:
            active.append(steps.pop(0))
        lines = rnd.choice(active)
        level, component, message = lines.pop(0)
        if not lines:
            active.remove(lines)
        block = message.split("blk_")[1].split()[0].rstrip(".:")
        blocks["blk_" + block].append(level)
        when = first + dt.timedelta(seconds=clock)
        out.append(hdfs_line(when.strftime("%y%m%d"), when.strftime("%H%M%S"), level,
                             component, message))
        clock += 37
    for _ in range(garbage):
        out.insert(rnd.randrange(len(out)), "this is not an hdfs line")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return blocks


def read_days(out: Path) -> dict[str, list[dict]]:
    return {path.name: json.loads(path.read_text("utf-8"))
            for path in sorted(out.glob("preprocessed_logs_*.json"))}


@pytest.fixture(scope="module")
def hdfs_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hdfs")
    log = folder / "hdfs.log"
    blocks = write_hdfs_log(log, garbage=3)
    result = invoke("ingest", log, "--preset", "hdfs", "--out", folder / "out")
    return folder, blocks, result


def test_ingest_hdfs_like_log_validates_and_prepares_with_session_keys(hdfs_run):
    folder, blocks, result = hdfs_run
    assert result.exit_code == 0, result.output
    out = folder / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "drain_state.json", "preprocessed_logs_2008-11-09.json",
        "preprocessed_logs_2008-11-10.json", "templates.tsv"]
    validated = invoke("validate", out, "--json")
    assert validated.exit_code == 0, validated.output
    stats = json.loads(validated.stdout)
    assert stats["n_sessions"] == len(blocks) and stats["bad_records"]["total"] == 0
    assert stats["token_layout"]["ok"] == len(blocks)
    records = [r for day in read_days(out).values() for r in day]
    by_key = {r["session_key"]: r for r in records}
    assert set(by_key) == set(blocks)
    for key, levels in blocks.items():
        record = by_key[key]
        assert len(record["event_sequence"]) == len(record["original_logs"]) == len(levels)
        assert record["has_warn"] == ("WARN" in levels) and record["has_error"] is False
        assert record["token_ids"] == [101, *record["event_sequence"], 102]
        assert all(key in line for line in record["original_logs"])
    # Every block's first line is the allocate template: one event id for all of them.
    assert len({r["event_sequence"][0] for r in records}) == 1
    cache = folder / "cache"
    results = prepare_files(sorted(out.glob("preprocessed_logs_*.json")), cache)
    keys = [key for r in results for key in open_prepared(cache_dir_for(r.path, cache))
            .session_keys]
    assert sorted(keys) == sorted(blocks)


def test_session_keys_reach_the_results_and_join_block_labels(hdfs_run):
    """Raw lines -> radar ingest -> radar run: results carry session_key, and a LogHub-style
    BlockId,Label file joins on it for the training filter and the report."""
    folder, blocks, _ = hdfs_run
    labels = folder / "anomaly_label.csv"
    with labels.open("w", encoding="utf-8") as handle:
        handle.write("BlockId,Label\n")
        handle.writelines(f"{key},{'Anomaly' if 'WARN' in levels else 'Normal'}\n"
                          for key, levels in blocks.items())
    run = folder / "run"
    result = invoke("run", "--detector", "deeplog", "--config", shipped_config("demo"),
                    "--data", folder / "out", "--labels", labels,
                    "--set", f"output_dir={run}", "--set", f"data.cache_dir={folder / 'rc'}",
                    "--set", "models.deeplog.hidden_size=16",
                    "--set", "models.deeplog.embedding_size=16",
                    "--set", "training.total_steps=4", "--set", "training.log_interval=2",
                    "--set", "training.save_interval=2")
    assert result.exit_code == 0, result.output
    records = json.loads((run / "anomaly_results.json").read_text())
    validation_day = read_days(folder / "out")["preprocessed_logs_2008-11-10.json"]
    assert [r["session_key"] for r in records] == [r["session_key"] for r in validation_day]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["label_source"] == str(labels)
    warned = sum("WARN" in blocks[r["session_key"]] for r in records)
    assert summary["metrics"]["n_anomalous"] == warned > 0


def test_ingest_reports_bad_lines_with_file_and_line(hdfs_run):
    folder, _, result = hdfs_run
    assert result.exit_code == 0
    assert "3 bad" in result.stdout
    assert f"bad line {folder / 'hdfs.log'}:" in result.stdout
    assert "does not match the hdfs format" in result.stdout
    templates = (folder / "out" / "templates.tsv").read_text().splitlines()
    assert templates[0] == "event_id\ttemplate" and len(templates) >= 5
    assert any("PacketResponder <NUM> for block <BLK> terminating" in t for t in templates)


def test_a_line_naming_several_blocks_joins_each_session(tmp_path):
    log = tmp_path / "hdfs.log"
    log.write_text(
        "081109 203615 148 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /a. blk_1\n"
        "081109 203616 148 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /b. blk_-2\n"
        "081109 203617 19 INFO dfs.FSNamesystem: BLOCK* ask 10.0.0.1:50010 to delete "
        "blk_1 blk_-2 blk_1\n")
    summary = ingest([log], tmp_path / "out", IngestOptions(preset="hdfs"))
    records = read_days(tmp_path / "out")["preprocessed_logs_2008-11-09.json"]
    assert summary.sessions == 2 and summary.lines_read == 3
    assert [r["session_key"] for r in records] == ["blk_1", "blk_-2"]
    assert [len(r["event_sequence"]) for r in records] == [2, 2]     # repeats count once
    assert records[0]["event_sequence"][1] == records[1]["event_sequence"][1]


def test_state_file_keeps_event_ids_across_runs(tmp_path):
    day1, day2 = tmp_path / "day1.log", tmp_path / "day2.log"
    write_hdfs_log(day1, n_blocks=40, seed=1, day="081109")
    write_hdfs_log(day2, n_blocks=40, seed=2, day="081111")
    with day2.open("a") as handle:     # a template day 1 never saw
        handle.write("081111 235959 7 INFO dfs.DataBlockScanner: Verification succeeded for "
                     "blk_77\n")
    out = tmp_path / "out"
    first = ingest([day1], out, IngestOptions(preset="hdfs"))
    table1 = dict(line.split("\t") for line in (out / "templates.tsv").read_text().splitlines())
    second = ingest([day2], out, IngestOptions(preset="hdfs"))
    table2 = dict(line.split("\t") for line in (out / "templates.tsv").read_text().splitlines())
    assert first.new_templates == first.templates and second.new_templates == 1
    assert second.templates == first.templates + 1
    assert {k: v for k, v in table2.items() if k in table1} == table1
    days = read_days(out)
    old = {r["original_logs"][0].split(": ", 1)[1].split(" blk_")[0]: r["event_sequence"][0]
           for r in days["preprocessed_logs_2008-11-09.json"]}
    new = {r["original_logs"][0].split(": ", 1)[1].split(" blk_")[0]: r["event_sequence"][0]
           for r in days["preprocessed_logs_2008-11-11.json"]}
    assert old.keys() & new.keys() and all(old[k] == new[k] for k in old.keys() & new.keys())
    scanner = [r for r in days["preprocessed_logs_2008-11-11.json"] if r["session_key"] == "blk_77"]
    assert scanner[0]["event_sequence"] == [second.templates]    # the new id comes last
    with pytest.raises(RadarError, match="sim-th 0.5, not 0.7"):
        ingest([day2], out, IngestOptions(preset="hdfs", sim_th=0.7))


def bgl_line(label: str, when: str, level: str, message: str) -> str:
    day = when[:10]
    return (f"{label} 1117838570 {day.replace('-', '.')} R02-M1-N0-C:J12-U11 "
            f"{when}.123456 R02-M1-N0-C:J12-U11 RAS KERNEL {level} {message}")


def test_bgl_windows_labels_and_levels(tmp_path):
    lines = [
        bgl_line("-", "2005-06-03-15.40.10", "INFO", "instruction cache parity error corrected"),
        bgl_line("KERNDTLB", "2005-06-03-15.41.00", "INFO", "data TLB error interrupt"),
        bgl_line("-", "2005-06-03-15.46.00", "FATAL", "rts: kernel terminated for reason 1004"),
        bgl_line("-", "2005-06-03-15.47.00", "WARNING", "ddr: activating redundant bit steering"),
        bgl_line("-", "2005-06-04-00.01.00", "INFO", "generating core.2275"),
    ]
    log = tmp_path / "bgl.log"
    log.write_text("\n".join(lines) + "\n")
    summary = ingest([log], tmp_path / "out", IngestOptions(preset="bgl"))
    days = read_days(tmp_path / "out")
    assert summary.sessions == 3 and list(days) == [
        "preprocessed_logs_2005-06-03.json", "preprocessed_logs_2005-06-04.json"]
    first, second = days["preprocessed_logs_2005-06-03.json"]
    assert first["session_key"] == "2005-06-03T15:40:00" and len(first["original_logs"]) == 2
    # The alert label is not a feature: the INFO alert line leaves has_error False.
    assert (first["has_error"], first["has_warn"]) == (False, False)
    assert (second["has_error"], second["has_warn"]) == (True, True)
    table = read_labels(tmp_path / "out" / "labels.csv")
    ids = np.array([0, 1])
    assert table.lookup("preprocessed_logs_2005-06-03.json", ids).tolist() == [1, 0]
    assert table.lookup("preprocessed_logs_2005-06-04.json", ids[:1]).tolist() == [0]


def line_at(number: int, ts: float, event: int = 1, service=None) -> LogLine:
    return LogLine(number, ts, "2025-01-01", event, f"line {number}", False, False, False,
                   service)


def test_sliding_windows_drop_repeats_and_fixed_windows_do_not_overlap():
    times = [0, 10, 70, 400, 1000]
    sliding = WindowGrouper(GroupingSpec(group_by="sliding", window=300, step=60))
    fixed = WindowGrouper(GroupingSpec(group_by="window", window=300))
    closed = {"sliding": [], "fixed": []}
    for number, ts in enumerate(times, start=1):
        closed["sliding"] += sliding.add(line_at(number, ts))
        closed["fixed"] += fixed.add(line_at(number, ts))
    closed["sliding"] += list(sliding.finish())
    closed["fixed"] += list(fixed.finish())
    spans = [(s.first_line, s.last_line) for s in closed["sliding"]]
    # windows start every 60 s: [-240, 60) holds lines 1-2, [-180, 120) .. [0, 300) lines 1-3
    assert spans == [(1, 2), (1, 3), (3, 3), (4, 4), (5, 5)]   # one per distinct line set
    assert sliding.n_duplicates > 0
    assert [(s.key, s.n_lines) for s in closed["fixed"]] == [
        ("1970-01-01T00:00:00", 3), ("1970-01-01T00:05:00", 1), ("1970-01-01T00:15:00", 1)]


def test_key_sessions_close_on_timeout_and_open_cap():
    grouper = KeyGrouper(GroupingSpec(max_open=2, timeout=100, max_lines=1))
    closed = []
    closed += grouper.add(line_at(1, 0), ["a"])
    closed += grouper.add(line_at(2, 1), ["b"])
    closed += grouper.add(line_at(3, 2), ["a"])
    closed += grouper.add(line_at(4, 3), ["c"])        # over the cap: b (least recent) closes
    assert [s.key for s in closed] == ["b"]
    closed += grouper.add(line_at(5, 500), ["d"])      # a and c idle past the timeout
    assert [s.key for s in closed] == ["b", "a", "c"]
    rest = list(grouper.finish())
    assert [s.key for s in rest] == ["d"] and grouper.n_closed_early == 3
    assert closed[1].n_lines == 2 and closed[1].logs == ["line 1"]   # logs capped, not events
    assert list(closed[1].events) == [1, 1]


def test_timestamps_of_the_supported_forms():
    def parse(pattern, text):
        regex = __import__("re").compile(pattern)
        return TimeParser(regex.groupindex)(regex.match(text))

    assert parse(PRESETS["hdfs"].pattern, "081109 203615 1 INFO a: b") == (
        1226262975.0, "2008-11-09")
    ts, day = parse(r"(?P<timestamp>\S+) (?P<content>.*)", "2005-06-03-15.42.50.675872 x")
    assert day == "2005-06-03" and ts == pytest.approx(1117813370.675872)
    for text in ("2024-05-01T12:00:00Z", "2024-05-01 12:00:00,000", "1714564800",
                 "1714564800000"):
        pattern = r"(?P<timestamp>\d\S*(?: \S+)?) (?P<content>.*)"
        assert parse(pattern, f"{text} msg") == (1714564800.0, "2024-05-01"), text
    assert parse(r"(?P<date>\S+) (?P<time>\S+) (?P<content>.*)", "2024/05/01 12:00:00.5 m"
                 ) == (1714564800.5, "2024-05-01")
    with pytest.raises(ValueError):
        parse(r"(?P<timestamp>\S+) (?P<content>.*)", "yesterday x")


def test_generic_format_service_group_gzip_and_several_inputs(tmp_path):
    first, second = tmp_path / "a.log.gz", tmp_path / "b.log"
    with gzip.open(first, "wt") as handle:
        handle.write("2024-05-01 10:00:01,123 INFO [auth] req=r1 login ok\n"
                     "2024-05-01 10:00:02,000 ERROR [auth] req=r2 login failed\n")
    second.write_text("2024-05-01 10:00:03 WARN [db] req=r1 slow query 120 ms\n\n"
                      "garbage\n")
    fmt = (r"(?P<timestamp>\S+ \S+) (?P<level>\w+) \[(?P<service>\w+)\] "
           r"req=(?P<request>\w+) (?P<content>.*)")
    result = invoke("ingest", first, second, "--format", fmt, "--key-group", "request",
                    "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    records = read_days(tmp_path / "out")["preprocessed_logs_2024-05-01.json"]
    assert [(r["session_key"], r["service_name"], r["has_error"], r["has_warn"],
             len(r["event_sequence"])) for r in records] == [
        ("r1", "auth", False, True, 2), ("r2", "auth", True, False, 1)]
    assert "1 bad" in result.stdout and "b.log:3: does not match --format" in result.stdout
    windows = invoke("ingest", second, "--format", fmt, "--service", "shop",
                     "--out", tmp_path / "win")
    assert windows.exit_code == 0, windows.output
    record, = read_days(tmp_path / "win")["preprocessed_logs_2024-05-01.json"]
    assert record["service_name"] == "db" and record["session_key"] == "db/2024-05-01T10:00:00"


def test_people_get_errors_not_tracebacks(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("just some words\nand more words\n")
    result = invoke("ingest", log, "--preset", "hdfs", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert str(log) in result.stderr and "--preset" in result.stderr
    assert "--format" in result.stderr and "Traceback" not in result.output
    assert not list((tmp_path / "out").glob("preprocessed_logs_*"))
    for args, text in ((["--format", "(unclosed"], "--format is not a valid"),
                       (["--format", r"(?P<timestamp>\S+) (?P<msg>.*)"], "(?P<content>"),
                       (["--key-regex", "[oops"], "--key-regex is not a valid"),
                       (["--key-group", "nope"], "--key-group 'nope' is not a named group"),
                       (["--group-by", "sliding", "--window", "60", "--step", "120"],
                        "--step 120 is longer than --window 60")):
        result = invoke("ingest", log, "--out", tmp_path / "out", *args)
        assert result.exit_code == 1 and text in result.stderr, (args, result.output)
    result = invoke("ingest", tmp_path / "missing.log", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "missing.log does not exist" in result.stderr


def test_a_damaged_state_file_is_named(tmp_path):
    log = tmp_path / "hdfs.log"
    write_hdfs_log(log, n_blocks=5)
    state = tmp_path / "state.json"
    for text in ("not json", json.dumps({"format": "radar-ingest-drain-state", "version": 1,
                                         "settings": {"sim_th": 0.5, "depth": 4, "masking": []},
                                         "drain": "{\"py/object\": \"no.such.Class\"}"})):
        state.write_text(text)
        result = invoke("ingest", log, "--preset", "hdfs", "--out", tmp_path / "out",
                        "--state", state)
        assert result.exit_code == 1 and str(state) in result.stderr, result.output
        assert "--state" in result.stderr


def test_missing_drain3_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "drain3", None)
    log = tmp_path / "x.log"
    log.write_text("081109 203615 148 INFO a: blk_1 b\n")
    result = invoke("ingest", log, "--preset", "hdfs", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "pip install 'radar-logs[ingest]'" in result.stderr


def test_replace_warns_and_append_continues_session_ids(tmp_path):
    log = tmp_path / "hdfs.log"
    write_hdfs_log(log, n_blocks=20)
    out = tmp_path / "out"
    assert invoke("ingest", log, "--preset", "hdfs", "--out", out).exit_code == 0
    again = invoke("ingest", log, "--preset", "hdfs", "--out", out)
    assert again.exit_code == 0 and "replaced" in again.stdout
    assert sum(len(day) for day in read_days(out).values()) == 20
    appended = invoke("ingest", log, "--preset", "hdfs", "--out", out, "--append")
    assert appended.exit_code == 0, appended.output
    for records in read_days(out).values():
        assert [r["session_id"] for r in records] == list(range(len(records)))
    assert sum(len(day) for day in read_days(out).values()) == 40
    assert invoke("validate", out).exit_code == 0


def test_damaged_gzip_keeps_the_lines_before(tmp_path):
    log = tmp_path / "hdfs.log"
    write_hdfs_log(log, n_blocks=200)
    packed = gzip.compress(log.read_bytes())
    damaged = tmp_path / "hdfs.log.gz"
    damaged.write_bytes(packed[:len(packed) // 2])
    result = invoke("ingest", damaged, "--preset", "hdfs", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stdout and "unreadable after line" in result.stdout
    assert invoke("validate", tmp_path / "out").exit_code == 0


def test_parsing_accuracy_definition():
    assert parsing_accuracy(["a", "a", "b", "c"], [1, 1, 2, 2]) == 0.5
    assert parsing_accuracy([5, 5, 6], ["x", "x", "y"]) == 1.0


@pytest.mark.skipif(not LOGHUB.exists(), reason="../shared/data/loghub_2k not available")
@pytest.mark.parametrize("name,preset,floor", [("HDFS", "hdfs", 0.99), ("BGL", "bgl", 0.96)])
def test_drain_templates_match_loghub_on_real_2k_samples(tmp_path, name, preset, floor):
    log = LOGHUB / name / f"{name}_2k.log"
    fmt = PRESETS[preset]
    store = TemplateStore.open(tmp_path / "state.json", sim_th=None, depth=None,
                               default_sim_th=fmt.sim_th, default_depth=fmt.depth)
    lines = log.read_text(encoding="utf-8").splitlines()
    predicted = [store.event_id(fmt.regex.match(line)["content"]) for line in lines]
    with open(f"{log}_structured.csv", newline="", encoding="utf-8") as handle:
        truth = [row["EventId"] for row in csv.DictReader(handle)]
    assert parsing_accuracy(predicted, truth) >= floor
    summary = ingest([log], tmp_path / "out", IngestOptions(preset=preset))
    assert summary.bad_lines == 0 and summary.lines_parsed == 2000
    assert invoke("validate", tmp_path / "out").exit_code == 0


def test_corrupt_gzip_data_is_a_warning_not_a_zlib_traceback(tmp_path):
    log = tmp_path / "hdfs.log"
    write_hdfs_log(log, n_blocks=50)
    packed = bytearray(gzip.compress(log.read_bytes()))
    packed[10] = 0xFF                   # the first deflate block: "invalid block type"
    damaged = tmp_path / "hdfs.log.gz"
    damaged.write_bytes(bytes(packed))
    result = CliRunner().invoke(cli, ["ingest", str(damaged), "--preset", "hdfs",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.exception.__class__ is SystemExit, result.output
    assert "unreadable after line 0" in result.stderr or "no log lines" in result.stderr


@pytest.mark.parametrize("option", ["--format", "--key-regex"])
def test_a_catastrophic_regex_stops_with_a_clear_error(tmp_path, monkeypatch, option):
    from radar import deadline

    monkeypatch.setattr(deadline, "LINE_SECONDS", 0.3)
    log = tmp_path / "app.log"
    log.write_text("2024-05-01 12:00:00 " + "a" * 40 + "!\n")
    evil = "(a+)+$"
    args = (["--format", r"(?P<timestamp>\S+ \S+) (?P<content>" + evil + ")"]
            if option == "--format" else ["--group-by", "key", "--key-regex", evil])
    result = CliRunner().invoke(cli, ["ingest", str(log), "--out", str(tmp_path / "out"),
                                      *args])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{log}:1: reading this line took over 0.3 s" in result.stderr
    assert not list((tmp_path / "out").glob("preprocessed_logs_*"))
