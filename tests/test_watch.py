"""`radar watch`: generated HDFS-format lines through a tiny trained run.

One module fixture ingests a generated training log (`radar ingest --preset hdfs`) and
trains a tiny LogBERT on it (`radar train`); the tests stream a second generated log
(with anomalous blocks and a template never seen in training) through `radar watch`
and compare with `radar detect` on the same sessions from a batch `radar ingest`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from radar.cli import cli
from tests.test_jobs import run_args

START = dt.datetime(2008, 11, 9, 20, 0, 0)


def block_lines(rnd: random.Random, block: str, anomalous: bool) -> list[tuple[str, str, str]]:
    """(level, component, message) of one block's lifecycle; anomalous ones fail a write."""
    node = f"10.251.{rnd.randrange(255)}.{rnd.randrange(255)}"
    lines = [("INFO", "dfs.FSNamesystem",
              f"BLOCK* NameSystem.allocateBlock: /user/root/part-{rnd.randrange(999)}. {block}")]
    for k in range(3):
        lines.append(("INFO", "dfs.DataNode$DataXceiver",
                      (f"Receiving block {block} src: /{node}:{rnd.randrange(40000, 60000)} "
                      f"dest: /{node}:50010")))
    if anomalous:
        lines.append(("INFO", "dfs.DataNode$DataXceiver",
                      (f"writeBlock {block} received exception java.io.IOException: "
                      "Could not read from stream")))
        lines.append(("WARN", "dfs.DataNode$DataXceiver",
                      f"{node}:50010:Got exception while serving {block} to /{node}:"))
        return lines
    for k in range(3):
        lines.append(("INFO", "dfs.DataNode$PacketResponder",
                      f"PacketResponder {k} for block {block} terminating"))
        lines.append(("INFO", "dfs.FSNamesystem",
                      (f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {node}:50010 is "
                      f"added to {block} size {rnd.randrange(10**6, 10**8)}")))
    return lines


def write_log(path: Path, n_blocks: int, seed: int, anomaly_rate: float = 0.0,
              start: dt.datetime = START, step_s: int = 13,
              extra: list[str] = ()) -> dict[str, int]:
    """An HDFS-format log of interleaved blocks (20 in flight); returns {block: label}."""
    rnd = random.Random(seed)
    labels = {}
    steps = []
    for _ in range(n_blocks):
        block = f"blk_{rnd.choice(['', '-'])}{rnd.randrange(10**15, 10**16)}"
        labels[block] = int(rnd.random() < anomaly_rate)
        steps.append(block_lines(rnd, block, bool(labels[block])))
    out, clock, active = [], 0, []
    while steps or active:
        while steps and len(active) < 20:
            active.append(steps.pop(0))
        lines = rnd.choice(active)
        level, component, message = lines.pop(0)
        if not lines:
            active.remove(lines)
        when = start + dt.timedelta(seconds=clock)
        out.append(f"{when:%y%m%d %H%M%S} {rnd.randrange(1, 999)} {level} {component}: "
                   f"{message}")
        clock += step_s
    out.extend(extra)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return labels


def write_labels(path: Path, labels: dict[str, int]) -> Path:
    rows = ["BlockId,Label"] + [f"{block},{'Anomaly' if label else 'Normal'}"
                                for block, label in labels.items()]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """root/data (ingested training log + drain_state.json) and root/run (tiny LogBERT)."""
    root = tmp_path_factory.mktemp("watch")
    labels = write_log(root / "train.log", n_blocks=500, seed=1, anomaly_rate=0.05,
                       step_s=31)
    result = invoke("ingest", root / "train.log", "--preset", "hdfs", "--out", root / "data")
    assert result.exit_code == 0, result.output
    args = run_args(root)
    args[args.index("--labels") + 1] = str(write_labels(root / "labels.csv", labels))
    result = CliRunner().invoke(cli, ["train", "--detector", "logbert", *args])
    assert result.exit_code == 0, result.output
    return root


def stream_log(tmp_path: Path, n_blocks: int = 60, seed: int = 5) -> tuple[Path, dict]:
    """A later log: new blocks, 20% anomalous, one line of a template never trained on."""
    novel = (f"{START + dt.timedelta(days=3):%y%m%d %H%M%S} 7 ERROR dfs.DataNode: "
             "Disk quota exhausted on volume for blk_42")
    path = tmp_path / "stream.log"
    labels = write_log(path, n_blocks=n_blocks, seed=seed, anomaly_rate=0.2,
                       start=START + dt.timedelta(days=3), extra=[novel])
    labels["blk_42"] = 1
    return path, labels


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def batch_detect(root: Path, log: Path, tmp_path: Path) -> dict[str, dict]:
    """`radar ingest` (a copy of the training template state) + `radar detect`, by key."""
    state = tmp_path / "batch_state.json"
    shutil.copy(root / "data" / "drain_state.json", state)
    out = tmp_path / "batch"
    result = invoke("ingest", log, "--preset", "hdfs", "--state", state, "--out", out)
    assert result.exit_code == 0, result.output
    # A day judges drift (a new template many sessions log is left out of them); watch's
    # micro-batches cannot, so the two agree with drift handling off.
    result = invoke("detect", "--checkpoint", root / "run" / "best_model.pt", "--input", out,
                    "--output", tmp_path / "batch.json", "--device", "cpu",
                    "--drift-share", "0")
    assert result.exit_code == 0, result.output
    return {r["session_key"]: r for r in json.loads((tmp_path / "batch.json").read_text())}


# -- tests -------------------------------------------------------------------------------
def test_piped_lines_give_one_record_per_anomalous_session_agreeing_with_batch(
        trained, tmp_path):
    log, _labels = stream_log(tmp_path)
    alerts = tmp_path / "alerts.jsonl"
    result = invoke("watch", "--run", trained / "run", "--preset", "hdfs", "--state",
                    tmp_path / "state", "--alerts", alerts, "-", input=log.read_text())
    assert result.exit_code == 0, result.output
    records = read_jsonl(alerts)
    batch = batch_detect(trained, log, tmp_path)
    flagged = {key for key, record in batch.items() if record["is_anomaly"]}
    assert flagged, "the tiny model flags nothing: the comparison would be empty"
    assert {record["session_key"] for record in records} == flagged
    assert len(records) == len(flagged)                 # one record per session
    for record in records:
        same = batch[record["session_key"]]
        assert record["anomaly_score"] == pytest.approx(same["anomaly_score"], rel=1e-5)
        assert record["length"] == same["length"]
        assert record["threshold"] == same["threshold"]
        for name in ("first_seen", "closed_at", "latency_s", "closed_by", "top_positions"):
            assert name in record
        assert record["closed_by"] == "end_of_input"
        assert record["latency_s"] >= 0
    assert "blk_42" in flagged                          # a template never seen: an alert


def watch_args(trained, tmp_path, *extra):
    return ["watch", "--run", trained / "run", "--preset", "hdfs", "--state", tmp_path / "state",
            *extra]


def test_followed_file_every_session_scored_as_batch_detect_scores_it(trained, tmp_path):
    log, _ = stream_log(tmp_path, n_blocks=80, seed=9)
    out = tmp_path / "all.jsonl"
    result = invoke(*watch_args(trained, tmp_path, "--follow", log, "--once", "--all",
                                "--alerts", out, "--batch-size", "7"))
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    batch = batch_detect(trained, log, tmp_path)
    assert sorted(r["session_key"] for r in records) == sorted(batch)
    assert [r["session_id"] for r in records] == list(range(len(records)))
    for record in records:
        same = batch[record["session_key"]]
        assert record["is_anomaly"] == same["is_anomaly"]
        assert record["anomaly_score"] == pytest.approx(same["anomaly_score"], rel=1e-5)
    assert 0 < sum(r["is_anomaly"] for r in records) < len(records)


def watch_process(trained, tmp_path, log, alerts, *extra) -> subprocess.Popen:
    args = [str(a) for a in watch_args(trained, tmp_path, "--follow", log, "--all", "--alerts",
                                       alerts, "--session-timeout", "600", "--batch-size", "8",
                                       "--batch-wait", "0", "--stats-interval", "0", *extra)]
    return subprocess.Popen([sys.executable, "-m", "radar.cli", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_9_and_restart_lose_no_record_and_repeat_none(trained, tmp_path):
    log, _ = stream_log(tmp_path, n_blocks=400, seed=11)
    reference = tmp_path / "reference.jsonl"
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    result = invoke(*watch_args(trained, ref_dir, "--follow", log, "--once", "--all",
                                "--alerts", reference, "--session-timeout", "600"))
    assert result.exit_code == 0, result.output
    expected = read_jsonl(reference)

    alerts, kills = tmp_path / "alerts.jsonl", 0
    for target in (15, 120, 260):
        proc = watch_process(trained, tmp_path, log, alerts)
        deadline = time.monotonic() + 120
        while count_lines(alerts) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "watch made no progress"
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        with open(alerts, "ab") as handle:          # as if killed in the middle of a write
            handle.write(b'{"session_id": 999999, "session_key": "torn')
    assert kills == 3, "the watcher finished before it could be killed three times"
    proc = watch_process(trained, tmp_path, log, alerts, "--once")
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()

    records = read_jsonl(alerts)
    ids = [r["session_id"] for r in records]
    assert len(ids) == len(set(ids)), "a session was written twice"
    assert len(records) == len(expected), "a session was lost"
    for record, same in zip(records, expected):         # replays are deterministic
        assert (record["session_id"], record["session_key"], record["length"],
                record["is_anomaly"]) == (same["session_id"], same["session_key"],
                                          same["length"], same["is_anomaly"])
        assert record["anomaly_score"] == pytest.approx(same["anomaly_score"], rel=1e-5)


# -- sources: tail -F semantics ----------------------------------------------------------
def texts(lines) -> list[str]:
    return [text for _, _, text in lines]


def test_followed_file_appends_partial_lines_rotation_and_truncation(tmp_path):
    from radar.watch.sources import FollowedFile

    path = tmp_path / "app.log"
    followed = FollowedFile(path)
    assert followed.read() is None                          # not there yet: waited for
    path.write_bytes(b"one\ntw")
    assert texts(followed.read()) == ["one"]                 # "tw" waits for its newline
    assert followed.offset == 4
    with open(path, "ab") as handle:
        handle.write(b"o\n\nthree\n")
    assert texts(followed.read()) == ["two", "three"]        # blank lines skipped
    assert followed.read() is None
    path.rename(tmp_path / "app.log.1")                      # rotation
    with open(tmp_path / "app.log.1", "ab") as handle:
        handle.write(b"four\n")                              # the old file's last words
    path.write_bytes(b"five\n")
    assert texts(followed.read()) == ["four"]
    assert texts(followed.read()) == []                      # switched to the new file
    assert texts(followed.read()) == ["five"] and followed.rotations == 1
    path.write_bytes(b"six\n")                               # truncated and rewritten
    assert followed.read() == [] and followed.truncations == 1
    assert texts(followed.read()) == ["six"]


def test_followed_file_resumes_at_its_offset_even_after_rotation(tmp_path):
    from radar.watch.sources import FollowedFile

    path = tmp_path / "app.log"
    path.write_bytes(b"a\nb\n")
    first = FollowedFile(path)
    assert texts(first.read()) == ["a", "b"]
    position = first.position()
    first.close()
    with open(path, "ab") as handle:
        handle.write(b"c\n")
    path.rename(tmp_path / "app.log.1")                      # rotated while we were down
    path.write_bytes(b"d\n")
    again = FollowedFile(path, once=True)
    assert again.restore(position) is None
    got = []
    while not again.exhausted:
        got += texts(again.read() or [])
    assert got == ["c", "d"]


def test_once_reads_a_last_line_without_newline(tmp_path):
    from radar.watch.sources import FollowedFile

    path = tmp_path / "app.log"
    path.write_bytes(b"a\nlast")
    followed = FollowedFile(path, once=True)
    got = []
    while not followed.exhausted:
        got += texts(followed.read() or [])
    assert got == ["a", "last"]


# -- online sessions ---------------------------------------------------------------------
def online(end_regex=None, max_events=None, store=None, **options):
    from radar.ingest import IngestOptions, resolve
    from radar.ingest.templates import TemplateStore
    from radar.watch.sessions import OnlineSessions

    plan = resolve(IngestOptions(preset="hdfs", max_session_lines=0, **options))
    store = store or TemplateStore({"sim_th": 0.5, "depth": 4,
                                    "masking": [[r"blk_-?\d+", "BLK"]]})
    pattern = re.compile(end_regex) if end_regex else None
    return OnlineSessions(plan, store, end_regex=pattern, max_events=max_events)


def hdfs(second: int, message: str) -> tuple[str, int, str]:
    return ("t", second, (f"081109 {20 + second // 3600:02d}{second // 60 % 60:02d}"
                         f"{second % 60:02d} 1 INFO dfs.X: {message}"))


def test_sessions_close_on_end_marker_event_cap_wall_idle_and_end_of_input():
    sessions = online(end_regex="terminating", max_events=3)
    sessions.add_lines([hdfs(0, "Receiving block blk_1"), hdfs(1, "Receiving block blk_2"),
                        hdfs(2, "PacketResponder 0 for block blk_1 terminating")], wall=100.0)
    closed = sessions.take_closed()
    assert [(s.key, reason, len(s.events)) for s, reason in closed] == [
        ("blk_1", "end_marker", 2)]
    sessions.add_lines([hdfs(3, f"Receiving block blk_2 again {i}") for i in range(2)], 101.0)
    assert [(s.key, r, len(s.events)) for s, r in sessions.take_closed()] == [
        ("blk_2", "events_cap", 3)]
    sessions.add_lines([hdfs(4, "Receiving block blk_3"), hdfs(5, "Receiving block blk_4")],
                       102.0)
    sessions.add_lines([hdfs(6, "Receiving block blk_4")], 110.0)
    sessions.close_wall_idle(113.0, timeout=5.0)             # blk_3 silent since 102
    assert [(s.key, r) for s, r in sessions.take_closed()] == [("blk_3", "wall_idle")]
    sessions.close_all()
    assert [(s.key, r, len(s.events)) for s, r in sessions.take_closed()] == [
        ("blk_4", "end_of_input", 2)]
    assert sessions.n_open == 0
    assert sessions.counts["end_marker"] == sessions.counts["events_cap"] == 1


def test_open_sessions_round_trip_through_the_checkpoint_json():
    for options in ({"session_timeout": 50.0}, {"group_by": "sliding", "window": 60,
                                                 "step": 20}):
        lines = [hdfs(i * 7, f"Receiving block blk_{i % 5} from node {i}") for i in range(40)]
        straight = online(**options)
        straight.add_lines(lines, 1.0)
        straight.close_all()
        want = [(s.key, s.events.tolist(), r) for s, r in straight.take_closed()]

        first = online(**options)
        first.add_lines(lines[:23], 1.0)
        early = [(s.key, s.events.tolist(), r) for s, r in first.take_closed()]
        state = json.loads(json.dumps(first.to_state()))
        second = online(store=first.store, **options)
        second.restore(state)
        second.add_lines(lines[23:], 2.0)
        second.close_all()
        assert early + [(s.key, s.events.tolist(), r) for s, r in second.take_closed()] == want


# -- sinks -------------------------------------------------------------------------------
def test_file_sink_cuts_a_torn_line_and_skips_what_it_already_holds(tmp_path):
    from radar.watch.sink import FileSink

    path = tmp_path / "alerts.jsonl"
    path.write_text('{"session_id": 4}\n{"session_id": 5}\n{"session_id": 6, "sess')
    sink = FileSink(path)
    sink.open(from_id=5)
    assert sink.through == 5
    assert sink.write([{"session_id": 5}, {"session_id": 6}, {"session_id": 7}]) == 2
    sink.close()
    assert [r["session_id"] for r in read_jsonl(path)] == [4, 5, 6, 7]


def test_file_sink_writes_to_dev_null_and_to_a_pipe(tmp_path):
    """--alerts /dev/null (fsync gives EINVAL) and a pipe (not seekable: /dev/stdout | cat)
    are streams like stdout: written, not read back or fsynced."""
    import os

    from radar.errors import RadarError
    from radar.watch.sink import FileSink

    sink = FileSink(Path(os.devnull))
    sink.open(from_id=3)
    assert sink.write([{"session_id": 3}, {"session_id": 4}]) == 2
    sink.close()
    fifo = tmp_path / "alerts.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        sink = FileSink(fifo)
        sink.open(from_id=0)
        assert sink.write([{"session_id": 0}]) == 1
        assert json.loads(os.read(reader, 4096)) == {"session_id": 0}
    finally:
        os.close(reader)
    with pytest.raises(RadarError, match=r"alerts.fifo was closed by the reader"):
        sink.write([{"session_id": 1}])
    sink.close()


def test_watch_alerts_to_dev_null_and_to_a_pipe_end_to_end(trained, tmp_path):
    """`radar watch --alerts /dev/null` and `--alerts /dev/stdout | cat` (#25)."""
    log, _ = stream_log(tmp_path, n_blocks=20, seed=23)
    base = [sys.executable, "-m", "radar.cli", *map(str, watch_args(trained, tmp_path))]
    done = subprocess.run([*base, "--all", "--alerts", "/dev/null", "-"], check=False,
                          stdin=log.open("rb"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    shutil.rmtree(tmp_path / "state")
    with log.open("rb") as lines:
        watch = subprocess.Popen([*base, "--all", "--alerts", "/dev/stdout", "-"],
                                 stdin=lines, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        cat = subprocess.run(["cat"], stdin=watch.stdout, capture_output=True, timeout=300,
                             check=False)
        watch.stdout.close()
        err = watch.communicate(timeout=300)[1].decode()
    assert watch.returncode == 0 and "Traceback" not in err, err
    records = [json.loads(line) for line in cat.stdout.decode().splitlines()]
    assert records and [r["session_id"] for r in records] == list(range(len(records)))


@contextlib.contextmanager
def receiver(fail_first: int):
    """A loopback webhook receiver answering 503 to its first ``fail_first`` POSTs."""
    got: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if len(got) + Handler.failed < fail_first:
                Handler.failed += 1
                self.send_response(503)
            else:
                got.append((self.headers["Idempotency-Key"], json.loads(body)))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    Handler.failed = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", got, Handler
    finally:
        server.shutdown()


def test_webhook_gets_each_alert_once_after_retries(trained, tmp_path):
    log, _ = stream_log(tmp_path, n_blocks=30, seed=21)
    with receiver(fail_first=2) as (url, got, handler):
        result = invoke(*watch_args(trained, tmp_path, "--alerts", tmp_path / "a.jsonl",
                                    "--webhook", url, "-"), input=log.read_text())
        assert result.exit_code == 0, result.output
    written = read_jsonl(tmp_path / "a.jsonl")
    assert written and handler.failed == 2
    assert [body["session_id"] for _, body in got] == [r["session_id"] for r in written]
    keys = [key for key, _ in got]
    assert len(set(keys)) == len(keys) and all(key.endswith(f"-{body['session_id']}")
                                                for key, body in got)


def test_webhook_that_never_answers_is_reported_not_fatal(trained, tmp_path):
    log, _ = stream_log(tmp_path, n_blocks=10, seed=22)
    with receiver(fail_first=10**6) as (url, got, _):
        result = invoke(*watch_args(trained, tmp_path, "--webhook", url, "--webhook-retries",
                                    "1", "--alerts", tmp_path / "a.jsonl", "-"),
                        input=log.read_text())
    assert result.exit_code == 0, result.output
    assert "not delivered after 2 attempts (HTTP 503)" in result.output and not got


# -- errors for people -------------------------------------------------------------------
def test_people_get_errors_not_tracebacks(trained, tmp_path):
    run = trained / "run"
    cases = [
        ((), "say where lines come from"),
        (("--follow", tmp_path / "x.log", "-"), "not both"),
        (("--once", "-"), "--once applies to --follow files"),
        (("--end-regex", "done", "--group-by", "window", "-"), "--end-regex closes key"),
        (("--end-regex", "(", "-"), "--end-regex is not a valid regular expression"),
        (("--templates-state", tmp_path / "none.json", "-"), "no such file"),
    ]
    result = invoke("watch", "--run", tmp_path / "no-run", "-", input="")
    assert result.exit_code == 1 and "does not exist" in result.output
    for extra, message in cases:
        result = invoke("watch", "--run", run, "--preset", "hdfs", "--state",
                        tmp_path / "s", *extra, input="")
        assert result.exit_code != 0 and message in result.output, (extra, result.output)
    bare = tmp_path / "bare-run"
    shutil.copytree(run, bare)
    (bare / "config.yaml").write_text("data:\n  preprocessed_dir: /nowhere\n")
    result = invoke("watch", "--run", bare, "--preset", "hdfs", "--state", tmp_path / "t",
                    "-", input="")
    assert result.exit_code == 1 and "cannot find the template state" in result.output
    assert invoke("watch", "--run", run, "--preset", "hdfs", "--state", tmp_path / "u",
                  "-", input="").exit_code == 0
    result = invoke("watch", "--run", run, "--preset", "bgl", "--state", tmp_path / "u",
                    "-", input="")
    assert result.exit_code == 1 and "use the same options" in result.output


def test_metrics_speak_prometheus():
    from radar.watch.metrics import WatchMetrics

    metrics = WatchMetrics()
    metrics.closed.inc(reason="idle")
    metrics.latency.observe(0.02)
    text = metrics.render()
    assert 'radar_watch_sessions_closed_total{reason="idle"} 1' in text
    assert "radar_watch_alert_latency_seconds_count 1" in text


def test_a_quiet_pipe_closes_its_sessions_by_wall_clock_and_exits_when_closed(
        trained, tmp_path):
    """Real stdin pipe, kept open: the sessions close by --wall-timeout, not by EOF."""
    log, _ = stream_log(tmp_path, n_blocks=12, seed=31)
    alerts = tmp_path / "alerts.jsonl"
    args = [str(a) for a in watch_args(trained, tmp_path, "--all", "--alerts", alerts,
                                       "--wall-timeout", "1", "--stats-interval", "0.5",
                                       "--metrics-port", "0", "-")]
    proc = subprocess.Popen([sys.executable, "-m", "radar.cli", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stdin.write(log.read_bytes())
    proc.stdin.flush()
    deadline = time.monotonic() + 120
    while count_lines(alerts) < 13:                   # 12 blocks + the novel line
        assert proc.poll() is None and time.monotonic() < deadline, "no wall-clock close"
        time.sleep(0.05)
    first = proc.stderr.readline().decode()           # "metrics: http://127.0.0.1:N/metrics"
    with urllib.request.urlopen(first.split()[-1], timeout=30) as answer:
        metrics = answer.read().decode()
    assert 'radar_watch_sessions_closed_total{reason="wall_idle"} 13' in metrics
    assert "radar_watch_lines_total 105" in metrics
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0
    records = read_jsonl(alerts)
    assert {r["closed_by"] for r in records} == {"wall_idle"}
    assert all(1.0 <= _seconds(r["closed_at"]) - _seconds(r["first_seen"]) for r in records)
    assert "lines (" in proc.stderr.read().decode()   # the stats line


def _seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def test_the_training_template_state_is_found_from_the_run_config(tmp_path, monkeypatch):
    from radar.errors import RadarError
    from radar.watch.state import run_template_state

    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("data:\n  preprocessed_dir: data/hdfs\n")
    with pytest.raises(RadarError, match="cannot find the template state"):
        run_template_state(run, None)
    state = tmp_path / "runs" / "data" / "hdfs" / "drain_state.json"
    state.parent.mkdir(parents=True)
    state.write_text("{}")
    monkeypatch.chdir(tmp_path)                         # not where `radar run` ran
    assert run_template_state(run, None).resolve() == state.resolve()


# -- the time limit on the user's patterns (#25) --------------------------------------
HOSTILE = "081109 203615 148 INFO dfs.DataNode: " + "a" * 40 + "!\n"
WATCH_SCRIPT = """
import io, sys
from pathlib import Path
from radar.ingest import IngestOptions
from radar.ingest.templates import TemplateStore
from radar.watch.watcher import Watcher, WatchOptions

root = Path(sys.argv[1])
state = root / "drain_state.json"
if not state.exists():
    TemplateStore.open(state, sim_th=None, depth=None, default_sim_th=0.5,
                       default_depth=4).save(state)
options = WatchOptions(run_dir=root, state_dir=root / "state", templates_state=state,
                       alerts=root / "alerts.jsonl", end_regex=sys.argv[3] or None,
                       ingest=IngestOptions(preset="hdfs", group_by="key",
                                            key_regex=sys.argv[2]))
watcher = Watcher(options, log=lambda line: print(line, file=sys.stderr, flush=True),
                  scorer=object(), stdin=io.BytesIO(open(sys.argv[4], "rb").read()))
print("watching", file=sys.stderr, flush=True)
watcher.run()
"""


def _watch_hostile(tmp_path, key_regex="blk_-?[0-9]+", end_regex=""):
    log = tmp_path / "hostile.log"
    log.write_text(HOSTILE.replace("dfs.DataNode: ", "dfs.DataNode: blk_1 "))
    return subprocess.Popen([sys.executable, "-c", WATCH_SCRIPT, str(tmp_path), key_regex,
                             end_regex, str(log)], stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("option", ["--key-regex", "--end-regex"])
def test_a_backtracking_pattern_in_watch_stops_with_one_line(tmp_path, monkeypatch, option):
    """`radar watch --key-regex '(a+)+$'` (or --end-regex) on a hostile line ran for
    minutes: the line deadline ingest uses is armed in watch too."""
    import io

    from radar import deadline
    from radar.deadline import SlowLine
    from radar.ingest import IngestOptions
    from radar.ingest.templates import TemplateStore
    from radar.watch.watcher import Watcher, WatchOptions

    monkeypatch.setattr(deadline, "LINE_SECONDS", 0.3)
    state = tmp_path / "drain_state.json"
    TemplateStore.open(state, sim_th=None, depth=None, default_sim_th=0.5,
                       default_depth=4).save(state)
    evil = "(a+)+$"
    options = WatchOptions(
        run_dir=tmp_path, state_dir=tmp_path / "state", templates_state=state,
        alerts=tmp_path / "alerts.jsonl", end_regex=evil if option == "--end-regex" else None,
        ingest=IngestOptions(preset="hdfs", group_by="key",
                             key_regex=evil if option == "--key-regex" else "a{3}"))
    watcher = Watcher(options, log=lambda line: None, scorer=object(),
                      stdin=io.BytesIO(HOSTILE.encode()))
    started = time.monotonic()
    with pytest.raises(SlowLine, match=r"^<stdin>:1: reading this line took over 0\.3 s; "
                                       r"a --format, --key-regex or --end-regex"):
        watcher.run()
    assert time.monotonic() - started < 5


def test_sigterm_stops_watch_while_a_line_is_stuck_in_a_pattern(tmp_path):
    """The match is interrupted within a tick of SIGTERM, not at the 10 s limit."""
    proc = _watch_hostile(tmp_path, key_regex="(a+)+$")
    try:
        assert proc.stderr.readline().strip() == "watching"
        time.sleep(1.0)                             # well inside the hostile line
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=8)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - sent < 3, err
    assert "stopped while <stdin>:1 was still being matched" in err


def test_the_deadline_outside_the_main_thread_ends_the_process_with_one_line():
    """No signal reaches a match in another thread: faulthandler's timer ends the process."""
    script = """
import re, threading
from radar.deadline import LineDeadline

def work():
    with LineDeadline(0.3, options="--key-regex") as deadline:
        deadline.path, deadline.number = "app.log", 7
        re.search("(a+)+$", "a" * 40 + "!")

thread = threading.Thread(target=work)
thread.start()
thread.join()
"""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False,
                          timeout=30)
    assert done.returncode == 1 and time.monotonic() - started < 20, done.stderr
    assert done.stderr.startswith("Timeout") and "in work" in done.stderr, done.stderr


def test_the_deadline_watchdog_names_a_stuck_line_when_it_can():
    """A line stuck outside a match (the interpreter lock free) gets the one-line error."""
    script = """
import threading, time
from radar.deadline import LineDeadline

def work():
    with LineDeadline(0.3, options="--key-regex") as deadline:
        deadline.path, deadline.number = "app.log", 7
        time.sleep(30)

threading.Thread(target=work).start()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False,
                          timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: app.log:7: reading this line took over 0.3 s; a "
                                  "--key-regex with nested repeats"), done.stderr
