"""`radar watch` on a time-ordered HDFS replay: agreement with batch detect, F1, speed, memory.

../shared has no large raw HDFS log, only HDFS_100k already parsed (each block's
event ids, with its label) and LogHub's 2,000-line raw sample. So the replay is
*rendered*: every block of HDFS_100k becomes raw HDFS lines
(``081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block
blk_... terminating``), one line per event of its real sequence, in its real order,
each event id written with the line shape LogHub's HDFS logs have for that template
(random IPs, ports, sizes). Block starts are spread over 10 hours from 2008-11-09
20:35 (Poisson arrivals); events follow within seconds, the late ones (verification,
serving, replication, deletion) 1-20 minutes later. All lines are sorted by time.
The first ``--train-share`` of the lines are the past (`radar ingest` + `radar run`,
trained on the blocks the labels call normal); the rest is the live stream.

Then:

1. batch: `radar ingest` of the stream (a copy of the training template state) and
   `radar detect` of its sessions;
2. `radar watch --follow STREAM --once --all` (as fast as it reads; its time after
   start-up, as it reports it, and the peak RSS of that process, ``os.wait4``);
3. `radar watch -` with the first ``--paced-lines`` of the stream piped in at ``--rate``
   lines/s (alert latency of a live stream). Both watch runs get ``OMP_NUM_THREADS=1``
   (torch on one core);
4. in this process on one core (``torch.set_num_threads(1)``): parse + template +
   grouping lines/s (:class:`radar.watch.sessions.OnlineSessions`) and scoring
   sessions/s (:func:`radar.watch.scoring.score_sessions`, micro-batches of 256).

Agreement: the decision and score of every session, watch against batch, joined on
(session_key, length). F1 against the block labels: a block is flagged when one of
its sessions is. Both sessions grouping settings: ``--session-timeout`` (log time),
longer than any gap inside a block, so a block is one session.

    python benchmarks/watch_replay.py --workdir /tmp/watch-replay
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from cases import ROOT, radar, radar_demo_config

SESSIONS = ROOT.parent / "shared" / "data" / "hdfs_100k" / "sessions.jsonl"
START = datetime(2008, 11, 9, 20, 35, 18)
LATE_EVENTS = {6, 8, 9, 10, 12, 13, 19}     # verification, replication, deletion, serving
COMPONENT = {1: "dfs.FSNamesystem", 2: "dfs.DataNode$DataXceiver",
             3: "dfs.DataNode$PacketResponder", 4: "dfs.FSNamesystem",
             5: "dfs.DataNode$PacketResponder", 6: "dfs.DataBlockScanner",
             7: "dfs.DataNode$DataXceiver", 8: "dfs.FSNamesystem", 9: "dfs.DataNode",
             10: "dfs.DataNode$DataTransfer", 11: "dfs.DataNode$DataXceiver",
             12: "dfs.FSDataset", 13: "dfs.FSNamesystem", 14: "dfs.DataNode$PacketResponder",
             15: "dfs.DataNode$BlockReceiver", 16: "dfs.DataNode$PacketResponder",
             17: "dfs.DataNode$BlockReceiver", 18: "dfs.DataNode$BlockReceiver",
             19: "dfs.DataNode$DataXceiver"}


def message(event: int, blk: str, rnd: random.Random) -> str:
    """HDFS_100k's template ``event`` written out as LogHub's HDFS lines write it."""
    def ip():
        return f"10.25{rnd.randrange(2)}.{rnd.randrange(256)}.{rnd.randrange(256)}"
    size, k = rnd.choice([67108864, rnd.randrange(1, 67108864)]), rnd.randrange(3)
    return {
        1: f"BLOCK* NameSystem.allocateBlock: /user/root/rand/_temporary/_task_200811092030"
           f"_0001_m_{rnd.randrange(10**6):06d}_0/part-{rnd.randrange(10**5):05d}. {blk}",
        2: f"Receiving block {blk} src: /{ip()}:{rnd.randrange(30000, 60000)} "
           f"dest: /{ip()}:50010",
        3: f"Received block {blk} of size {size} from /{ip()}",
        4: f"BLOCK* NameSystem.addStoredBlock: blockMap updated: {ip()}:50010 is added to "
           f"{blk} size {size}",
        5: f"PacketResponder {k} for block {blk} terminating",
        6: f"Verification succeeded for {blk}",
        7: f"writeBlock {blk} received exception java.io.IOException: Could not read from "
           "stream",
        8: f"BLOCK* ask {ip()}:50010 to replicate {blk} to datanode(s) {ip()}:50010",
        9: f"{ip()}:50010 Starting thread to transfer block {blk} to {ip()}:50010",
        10: f"{ip()}:50010:Transmitted block {blk} to /{ip()}:50010",
        11: f"Received block {blk} src: /{ip()}:{rnd.randrange(30000, 60000)} dest: "
            f"/{ip()}:50010 of size {size}",
        12: f"Deleting block {blk} file /mnt/hadoop/dfs/data/current/subdir{rnd.randrange(64)}"
            f"/{blk}",
        13: f"BLOCK* NameSystem.addStoredBlock: Redundant addStoredBlock request received for "
            f"{blk} on {ip()}:50010 size {size}",
        14: f"PacketResponder {blk} {k} Exception java.io.IOException: Broken pipe",
        15: f"Exception in receiveBlock for block {blk} java.io.IOException: Connection reset "
            "by peer",
        16: f"PacketResponder {k} for block {blk} Interrupted.",
        17: f"Changing block file offset of block {blk} from {rnd.randrange(10**7)} to "
            f"{rnd.randrange(10**7)} meta file offset to {rnd.randrange(10**5)}",
        18: f"Receiving empty packet for block {blk}",
        19: f"{ip()}:50010 Served block {blk} to /{ip()}",
    }[event]


def render_replay(out: Path, seed: int = 0, hours: float = 10.0) -> tuple[Path, dict]:
    """All blocks as raw lines sorted by time; returns the log and {block: label}."""
    rnd = random.Random(seed)
    blocks = [json.loads(line) for line in SESSIONS.open()]
    rnd.shuffle(blocks)
    gap = hours * 3600 / len(blocks)
    timed, clock = [], 0.0
    for index, block in enumerate(blocks):
        clock += rnd.expovariate(1 / gap)
        when = clock
        for event in block["events"]:
            when += rnd.uniform(60, 1200) if event in LATE_EVENTS else rnd.expovariate(0.5)
            timed.append((when, index, event))
    timed.sort()
    path = out / "replay.log"
    with path.open("w") as handle:
        for when, index, event in timed:
            stamp = START + timedelta(seconds=when)
            handle.write(f"{stamp:%y%m%d %H%M%S} {rnd.randrange(1, 300)} INFO "
                         f"{COMPONENT[event]}: {message(event, blocks[index]['block_id'], rnd)}\n")
    return path, {block["block_id"]: block["label"] for block in blocks}


def split_replay(replay: Path, share: float) -> tuple[Path, Path, int]:
    lines = replay.read_text().splitlines(keepends=True)
    cut = int(len(lines) * share)
    train, stream = replay.with_name("train.log"), replay.with_name("stream.log")
    train.write_text("".join(lines[:cut]))
    stream.write_text("".join(lines[cut:]))
    return train, stream, len(lines) - cut


def timed_watch(args: list[str], stdin=None) -> tuple[float, float, int]:
    """Run `radar watch ARGS` on one core; (wall seconds, seconds after its start-up (model
    loaded), peak RSS MB)."""
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}          # one core for torch
    proc = subprocess.Popen([sys.executable, "-m", "radar.cli", "watch", *args],
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if stdin:
        stdin(proc.stdin)
        proc.stdin.close()
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"radar watch failed:\n{err}")
    loop_s = float(re.search(r"([0-9.]+) s after start-up", err)[1])
    return time.perf_counter() - started, loop_s, usage.ru_maxrss // 1024


def paced(lines: list[bytes], rate: float):
    def feed(pipe):
        started = time.perf_counter()
        for i in range(0, len(lines), 50):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pipe.write(b"".join(lines[i:i + 50]))
            pipe.flush()
    return feed


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open() if line.strip()]


def agreement(watched: list[dict], batch: list[dict]) -> dict:
    key = lambda r: (r["session_key"], r["length"])
    by_key = {key(r): r for r in batch}
    pairs = [(r, by_key.get(key(r))) for r in watched]
    missing = sum(other is None for _, other in pairs)
    both = [(r, o) for r, o in pairs if o is not None]
    return {"watch_sessions": len(watched), "batch_sessions": len(batch),
            "unmatched": missing + len(batch) - len(both),
            "same_decision": sum(r["is_anomaly"] == o["is_anomaly"] for r, o in both),
            "max_score_diff": max((abs(r["anomaly_score"] - o["anomaly_score"])
                                   for r, o in both), default=0.0)}


def block_f1(records: list[dict], labels: dict) -> dict:
    flagged: dict[str, bool] = {}
    for record in records:
        flagged[record["session_key"]] = flagged.get(record["session_key"], False) \
            or record["is_anomaly"]
    tp = sum(1 for b, f in flagged.items() if f and labels.get(b) == 1)
    fp = sum(1 for b, f in flagged.items() if f and labels.get(b) == 0)
    fn = sum(1 for b, f in flagged.items() if not f and labels.get(b) == 1)
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return {"blocks": len(flagged), "anomalous": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "precision": p, "recall": r, "f1": 2 * p * r / max(p + r, 1e-12)}


def per_core(run: Path, state: Path, stream: Path, timeout: float) -> dict:
    """Lines/s through parse + template + grouping, and scoring sessions/s, on one core."""
    import torch

    from radar.ingest import IngestOptions, resolve
    from radar.watch.scoring import ClosedSession, load_scorer, score_sessions
    from radar.watch.sessions import OnlineSessions
    from radar.watch.state import open_templates

    torch.set_num_threads(1)
    plan = resolve(IngestOptions(preset="hdfs", session_timeout=timeout, max_session_lines=0))
    sessions = OnlineSessions(plan, open_templates(state, plan.fmt), max_events=10_000)
    lines = [("s", i, text) for i, text in enumerate(stream.read_text().splitlines())]
    started = time.perf_counter()
    for i in range(0, len(lines), 4096):
        sessions.add_lines(lines[i:i + 4096], 0.0)
    sessions.close_all()
    closed = sessions.take_closed()
    parse_s = time.perf_counter() - started
    batch = [ClosedSession(i, s.key, s.events.tolist(), "hdfs", s.has_error, s.has_warn,
                           0.0, 0.0, r) for i, (s, r) in enumerate(closed)]
    scorer = load_scorer(run, "cpu")
    score_sessions(scorer, batch[:8])                   # lazy set-up out of the timing
    started = time.perf_counter()
    for i in range(0, len(batch), 256):
        score_sessions(scorer, batch[i:i + 256])
    score_s = time.perf_counter() - started
    return {"lines": len(lines), "sessions": len(batch), "parse_lines_per_s": len(lines) / parse_s,
            "score_sessions_per_s": len(batch) / score_s,
            "end_to_end_lines_per_s": len(lines) / (parse_s + score_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/watch-replay"))
    parser.add_argument("--detector", action="append", default=None)
    parser.add_argument("--train-share", type=float, default=0.6)
    parser.add_argument("--session-timeout", type=float, default=1800.0)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced replay lines/s")
    parser.add_argument("--paced-lines", type=int, default=20000)
    parser.add_argument("--set", dest="settings", action="append", default=[],
                        help="extra --set for radar run")
    args = parser.parse_args()
    if not SESSIONS.is_file():
        raise SystemExit(f"{SESSIONS} is not here (../shared/data); nothing to replay")
    work, detectors = args.workdir, args.detector or ["deeplog"]
    work.mkdir(parents=True, exist_ok=True)
    timeout = ["--session-timeout", str(args.session_timeout)]
    replay, labels = render_replay(work)
    train, stream, n_stream = split_replay(replay, args.train_share)
    label_file = work / "labels.csv"
    label_file.write_text("BlockId,Label\n" + "".join(
        f"{b},{'Anomaly' if y else 'Normal'}\n" for b, y in labels.items()))
    data, run = work / "data", work / "run"
    if not (run / "config.yaml").is_file() or not (data / "drain_state.json").is_file():
        shutil.rmtree(data, ignore_errors=True)
        radar("ingest", str(train), "--preset", "hdfs", "--out", str(data), *timeout)
        radar_demo_config("run", detectors, data, label_file, run, work / "cache",
                          args.settings)
    batch_state = work / "batch_state.json"
    shutil.copy(data / "drain_state.json", batch_state)
    shutil.rmtree(work / "batch", ignore_errors=True)
    radar("ingest", str(stream), "--preset", "hdfs", "--state", str(batch_state), "--out",
          str(work / "batch"), *timeout)
    which = (["--ensemble", str(run)] if len(detectors) > 1
             else ["--checkpoint", str(run / "best_model.pt")])
    radar("detect", *which, "--input", str(work / "batch"), "--output",
          str(work / "batch.json"), "--device", "cpu")
    batch = json.loads((work / "batch.json").read_text())

    for name in ("state-once", "state-paced", "all.jsonl", "paced.jsonl"):
        shutil.rmtree(work / name, ignore_errors=True) if "state" in name else \
            (work / name).unlink(missing_ok=True)
    common = ["--run", str(run), "--preset", "hdfs", *timeout, "--all", "--stats-interval", "0"]
    seconds, loop_s, rss = timed_watch([*common, "--state", str(work / "state-once"), "--follow",
                                   str(stream), "--once", "--alerts", str(work / "all.jsonl")])
    watched = read_jsonl(work / "all.jsonl")
    lines = stream.read_bytes().splitlines(keepends=True)[:args.paced_lines]
    paced_s, _, paced_rss = timed_watch([*common, "--state", str(work / "state-paced"),
                                         "--alerts", str(work / "paced.jsonl"), "-"],
                                        stdin=paced(lines, args.rate))
    latencies = sorted(r["latency_s"] for r in read_jsonl(work / "paced.jsonl")
                       if r["closed_by"] != "end_of_input")
    result = {
        "stream_lines": n_stream, "detectors": detectors,
        "agreement": agreement(watched, batch),
        "f1_watch": block_f1(watched, labels), "f1_batch": block_f1(batch, labels),
        "once": {"seconds": seconds, "after_start_up_s": loop_s,
                 "lines_per_s": n_stream / loop_s, "peak_rss_mb": rss},
        "paced": {"rate": args.rate, "lines": len(lines), "seconds": paced_s,
                  "peak_rss_mb": paced_rss, "closed_in_stream": len(latencies),
                  "latency_p50": percentile(latencies, 50), "latency_p95": percentile(
                      latencies, 95), "latency_max": latencies[-1] if latencies else None},
        "per_core": per_core(run, data / "drain_state.json", stream, args.session_timeout),
    }
    print(json.dumps(result, indent=2))
    (work / "result.json").write_text(json.dumps(result, indent=2))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, int(len(values) * q / 100))]


if __name__ == "__main__":
    main()
