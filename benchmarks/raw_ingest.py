"""Raw-log ingest benchmark: `radar ingest` throughput and peak memory, and Drain3 accuracy.

Writes a synthetic HDFS-like raw log (block lifecycles interleaved the way a busy
cluster interleaves them: allocate, receive x3, responders x3, addStoredBlock x3,
verification, serving, later deletion; about 0.1% garbled lines) into a temporary
folder, then runs ``radar ingest --preset hdfs`` on it in a fresh process per run and
reports lines/s and that process's peak RSS (``os.wait4``'s ``ru_maxrss``).

``--accuracy`` instead reports the parsing (grouping) accuracy of the hdfs and bgl
presets' Drain3 templates against LogHub's EventId for ../shared/data/loghub_2k::

    python benchmarks/raw_ingest.py --lines 1500000
    python benchmarks/raw_ingest.py --lines 1500000 --extra "--max-open-sessions 10000"
    python benchmarks/raw_ingest.py --accuracy
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = ROOT.parent / "shared" / "data" / "loghub_2k"


def _lifecycle(rnd: random.Random, block: str) -> list[tuple[str, str, str]]:
    """(level, component, message) lines of one block, in order."""
    nodes = [f"10.250.{rnd.randrange(256)}.{rnd.randrange(256)}" for _ in range(3)]
    size = rnd.choice([67108864, rnd.randrange(1, 67108864)])
    lines = [("INFO", "dfs.FSNamesystem", (f"BLOCK* NameSystem.allocateBlock: "
              f"/user/root/rand/_temporary/_task_{rnd.randrange(10**6):06d}/part-"
              f"{rnd.randrange(10**5):05d}. {block}"))]
    for node in nodes:
        lines.append(("INFO", "dfs.DataNode$DataXceiver", (f"Receiving block {block} src: "
                      f"/{node}:{rnd.randrange(30000, 60000)} dest: /{node}:50010")))
    for k in range(3):
        lines.append(("INFO", "dfs.DataNode$PacketResponder",
                      f"PacketResponder {k} for block {block} terminating"))
        lines.append(("INFO", "dfs.DataNode$PacketResponder",
                      f"Received block {block} of size {size} from /{nodes[k]}"))
        lines.append(("INFO", "dfs.FSNamesystem", (f"BLOCK* NameSystem.addStoredBlock: "
                      f"blockMap updated: {nodes[k]}:50010 is added to {block} size {size}")))
    if rnd.random() < 0.3:
        lines.append(("INFO", "dfs.DataBlockScanner", f"Verification succeeded for {block}"))
    for _ in range(rnd.randrange(3)):
        lines.append(("INFO", "dfs.DataNode$DataXceiver",
                      f"{nodes[0]}:50010 Served block {block} to /{rnd.choice(nodes)}"))
    if rnd.random() < 0.03:      # an anomaly: a failed write
        lines.append(("WARN", "dfs.DataNode$DataXceiver", (f"{nodes[1]}:50010:Got exception "
                      f"while serving {block} to /{nodes[2]}:")))
    lines.append(("INFO", "dfs.FSNamesystem", (f"BLOCK* NameSystem.delete: {block} is added "
                  f"to invalidSet of {nodes[0]}:50010")))
    lines.append(("INFO", "dfs.FSDataset", (f"Deleting block {block} file "
                  f"/mnt/hadoop/dfs/data/current/subdir{rnd.randrange(64)}/{block}")))
    return lines


def write_log(path: Path, n_lines: int, seed: int = 0, active: int = 2000) -> int:
    """Write about ``n_lines`` HDFS-format lines over two days; returns the line count."""
    rnd = random.Random(seed)
    start = 1226262000              # 2008-11-09 20:20:00 (log clock)
    seconds_per_line = 2 * 86400 * 0.8 / n_lines
    pending: list[list] = []
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < n_lines:
            while len(pending) < active:
                block = f"blk_{rnd.choice(['', '-'])}{rnd.randrange(10**18)}"
                pending.append(_lifecycle(rnd, block))
            lines = pending[rnd.randrange(len(pending))]
            level, component, message = lines.pop(0)
            if not lines:
                pending.remove(lines)
            clock = time.gmtime(start + written * seconds_per_line)
            if rnd.random() < 0.001:
                out.write(f"garbled {message}\n")
            else:
                out.write(f"{time.strftime('%y%m%d %H%M%S', clock)} {rnd.randrange(1, 40000)} "
                          f"{level} {component}: {message}\n")
            written += 1
    return written


def run_ingest(log: Path, out: Path, extra: list[str]) -> dict:
    """One `radar ingest` in a fresh process: wall seconds and that process's peak RSS."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "radar.cli", "ingest", str(log), "--preset", "hdfs",
               "--out", str(out), *extra]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = child.stdout.read().decode()
    _pid, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"radar ingest failed:\n{output}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "output": output}


def accuracy() -> None:
    """Parsing accuracy of the hdfs and bgl presets on LogHub's 2k samples."""
    from radar.ingest.formats import PRESETS
    from radar.ingest.templates import TemplateStore, parsing_accuracy

    for name, preset in (("HDFS", "hdfs"), ("BGL", "bgl")):
        log = LOGHUB / name / f"{name}_2k.log"
        if not log.exists():
            raise SystemExit(f"{log} not found (only the developers' checkout has ../shared)")
        fmt = PRESETS[preset]
        store = TemplateStore.open(Path(tempfile.mkdtemp()) / "none.json", sim_th=None,
                                   depth=None, default_sim_th=fmt.sim_th,
                                   default_depth=fmt.depth)
        with log.open(encoding="utf-8") as handle:
            predicted = [store.event_id(fmt.regex.match(line.rstrip("\n"))["content"])
                         for line in handle]
        with open(f"{log}_structured.csv", newline="", encoding="utf-8") as handle:
            truth = [row["EventId"] for row in csv.DictReader(handle)]
        n_truth = len(set(truth))
        print(f"| {name}_2k | {preset} | {fmt.sim_th} | {fmt.depth} | {store.n_templates} "
              f"| {n_truth} | {parsing_accuracy(predicted, truth):.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the fastest is reported")
    parser.add_argument("--extra", default="", help="more `radar ingest` options, quoted")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--accuracy", action="store_true")
    args = parser.parse_args()
    if args.accuracy:
        print("| log | preset | sim_th | depth | templates | LogHub events | accuracy |")
        print("|---|---|---:|---:|---:|---:|---:|")
        accuracy()
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="radar-raw-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"hdfs_like_{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    size_mb = log.stat().st_size / 1e6
    runs = [run_ingest(log, workdir / "out", shlex.split(args.extra))
            for _ in range(args.repeat)]
    best = min(runs, key=lambda run: run["seconds"])
    print(best["output"])
    print("| lines | MB | options | s | lines/s | MB/s | peak RSS MB |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    print(f"| {args.lines:,} | {size_mb:,.0f} | {args.extra or '(defaults)'} "
          f"| {best['seconds']:.1f} | {args.lines / best['seconds']:,.0f} "
          f"| {size_mb / best['seconds']:.1f} | {max(r['peak_rss_mb'] for r in runs):,.0f} |")


if __name__ == "__main__":
    main()
