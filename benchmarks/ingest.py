"""Ingest benchmark: json.load against the streaming reader, prepare and cache reads.

Generates day files in the user's format (``preprocessed_logs_YYYY-MM-DD.json``), one
with unpadded token_ids and one with token_ids padded to 512 plus attention_mask, both
with realistic original_logs (one line per event, timestamps, services, some Korean
text), then measures each step in a fresh subprocess so the peak RSS is per step:

- ``json.load`` of the whole file (what the user's validator does);
- ``iter_sessions`` with the default fields, and with token_ids/attention_mask too;
- ``prepare_files`` over several day files with 1 and 2 worker processes;
- reading the prepared cache with ``PreparedDay.gather`` in shuffled batches of 256.

Each step runs ``--repeat`` times (default 3), each in a fresh process; the fastest
run is reported, since a shared machine only ever makes a run slower.

Prints a Markdown table (the one in docs/lab/benchmarks.md, section "Ingest")::

    python benchmarks/ingest.py                 # two ~300 MB files
    python benchmarks/ingest.py --quick         # ~30 MB each, a smoke run
    python benchmarks/ingest.py --reader-only   # json.load and iter_sessions only
    python benchmarks/ingest.py --compare-reader REV   # the reader at REV against this one
    python benchmarks/ingest.py --time-split    # where one reader pass spends its time
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICES = [("gateway", 5), ("research", 3), ("manager", 2), ("auth", 2), ("billing", 1),
            ("search", 1), ("notify", 1)]
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 4 + ["WARN", "ERROR"]
TEMPLATES = [
    "GET /api/v1/items/{n} 200 {ms}ms user={user}",
    "POST /api/v1/orders 201 {ms}ms order_id={n}",
    "요청 처리 완료: user={user} 경로=/api/v1/search 소요시간={ms}ms",
    "cache miss key=item:{n} fallback=db",
    "Connection pool stats active={k} idle={k2} waiting=0",
    "사용자 인증 성공 user={user} method=oauth2",
    "Retrying upstream call attempt={k} backoff={ms}ms",
    "Slow query detected: SELECT * FROM items WHERE id = {n} ({ms} ms)",
    "payload={{\"id\": {n}, \"status\": \"ok\", \"tags\": [\"a\", \"b\"]}}",
    "Scheduled job research-sync finished in {ms}ms, {k} rows",
]


# ---------------------------------------------------------------- data generation

def make_session(rnd: random.Random, session_id: int, padded: bool) -> dict:
    """One session in the user's format; lengths are long-tailed (a few exceed 512)."""
    length = max(1, min(2000, int(rnd.lognormvariate(3.0, 0.9))))
    events = [min(int(rnd.paretovariate(1.2)), 3000) for _ in range(length)]
    tokens = [101, *events[:510], 102]
    mask = [1] * len(tokens)
    if padded:
        tokens, mask = tokens + [0] * (512 - len(tokens)), mask + [0] * (512 - len(mask))
    service = rnd.choices([s for s, _ in SERVICES], [w for _, w in SERVICES])[0]
    hour, minute = rnd.randrange(24), rnd.randrange(60)
    logs = []
    for k, event in enumerate(events):
        text = TEMPLATES[event % len(TEMPLATES)].format(
            n=rnd.randrange(10**6), ms=rnd.randrange(1, 900), user=f"u{rnd.randrange(10**5)}",
            k=rnd.randrange(50), k2=rnd.randrange(50))
        logs.append(f"2025-07-03 {hour:02d}:{minute:02d}:{k % 60:02d}.{rnd.randrange(1000):03d} "
                    f"{rnd.choice(LEVELS)} [{service}] {text}")
    return {"session_id": session_id, "event_sequence": events, "token_ids": tokens,
            "attention_mask": mask, "has_error": rnd.random() < 0.03,
            "has_warn": rnd.random() < 0.1, "service_name": service, "original_logs": logs}


def write_day_file(path: Path, size_mb: float, padded: bool, layout: str, seed: int) -> int:
    """Write sessions until the file reaches ``size_mb``; the bytes are exactly what
    ``json.dump(sessions, f, indent=2 or None, ensure_ascii=False)`` would write."""
    rnd, target, n = random.Random(seed), size_mb * 1e6, 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n  " if layout == "indent" else "[")
        written = 0
        while written < target:
            session = make_session(rnd, n, padded)
            if layout == "indent":
                text = json.dumps(session, indent=2, ensure_ascii=False).replace("\n", "\n  ")
                separator = ",\n  "
            else:
                text, separator = json.dumps(session, ensure_ascii=False), ", "
            if n:
                handle.write(separator)
            handle.write(text)
            written += len(text.encode("utf-8")) + len(separator)
            n += 1
        handle.write("\n]" if layout == "indent" else "]")
    return n


# ---------------------------------------------------------------- measurements (child side)

def peak_rss_mb() -> float:
    """Largest RSS of this process or any finished child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_json_load(paths: list[str]) -> dict:
    started = time.perf_counter()
    with open(paths[0], encoding="utf-8") as handle:
        sessions = len(json.load(handle))
    return {"seconds": time.perf_counter() - started, "sessions": sessions}


def load_reader(source: str):
    """``radar.data.reader``, or the reader module saved at ``source`` (an older version
    of the file, for before/after runs on the same machine at the same time)."""
    if source in ("default", "tokens"):
        return importlib.import_module("radar.data.reader")
    spec = importlib.util.spec_from_file_location("radar_reader_before", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_reader(paths: list[str], with_tokens: bool, source: str = "default") -> dict:
    reader = load_reader(source)
    fields = reader.DEFAULT_FIELDS + reader.TOKEN_FIELDS if with_tokens else reader.DEFAULT_FIELDS
    started, sessions = time.perf_counter(), 0
    for _ in reader.iter_sessions(paths[0], fields=fields):
        sessions += 1
    return {"seconds": time.perf_counter() - started, "sessions": sessions}


def measure_prepare(paths: list[str], workers: int, cache_dir: str) -> dict:
    from radar.data.cache_build import prepare_files

    shutil.rmtree(cache_dir, ignore_errors=True)
    started = time.perf_counter()
    results = prepare_files(paths, cache_dir, workers=workers)
    return {"seconds": time.perf_counter() - started,
            "sessions": sum(result.n_sessions for result in results)}


def measure_gather(paths: list[str], cache_dir: str, order: str) -> dict:
    import numpy as np

    from radar.data.cache import cache_dir_for, open_prepared

    day = open_prepared(cache_dir_for(paths[0], cache_dir))
    rows = np.arange(day.n_sessions)
    if order == "shuffled":
        rows = np.random.default_rng(0).permutation(day.n_sessions)
    started, sessions = time.perf_counter(), 0
    while time.perf_counter() - started < 1.0:      # whole passes, at least a second
        for first in range(0, rows.size, 256):
            day.gather(rows[first:first + 256], max_len=512)
        sessions += int(rows.size)
    return {"seconds": time.perf_counter() - started, "sessions": sessions}


def spin() -> None:
    """A fixed amount of pure CPU work (the parallel-headroom control)."""
    total = 0
    for i in range(20_000_000):
        total += i


def parallel_headroom() -> float:
    """Throughput of two concurrent CPU-bound processes relative to one: 2.0 means two
    idle cores, 1.0 means the machine (shared, or one core) gives no parallelism."""
    command = [sys.executable, __file__, "--spin"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    alone = time.perf_counter() - started
    started = time.perf_counter()
    for process in [subprocess.Popen(command) for _ in range(2)]:
        process.wait()
    return 2 * alone / (time.perf_counter() - started)


def reader_time_split(path: Path) -> dict:
    """CPU seconds of one default-fields pass, split by the reader's parts (timers wrapped
    around its internals), and msgspec's floor: decoding the same bytes in memory into
    records of ``session_id`` alone, every other field skipped unbuilt."""
    from collections import Counter

    from radar.data import reader

    spent: Counter = Counter()

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - started
        return wrapper

    parts = [(reader, "_decode_quietly", "msgspec decode"), (reader, "_anchor_starts",
             "record starts"), (reader, "_padding_holes", "finding padding to cut"),
             (reader._Window, "fill", "reading 1 MB windows"),
             (reader._DayFileReader, "_accept", "per-record bookkeeping")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in parts]
    for owner, name, label in parts:
        setattr(owner, name, timed(label, getattr(owner, name)))
    try:
        started = time.process_time()
        for _ in reader.iter_sessions(path):
            pass
        total = time.process_time() - started
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
    split = dict(spent, total=total)
    split["the rest (copying cut records, the consumer's loop)"] = total - sum(spent.values())
    split["floor: msgspec walking the same bytes, building session_id alone"] = walk_floor(path)
    return split


def walk_floor(path: Path) -> float:
    """CPU seconds msgspec takes to walk the file in the reader's 1 MB pieces (cut at
    record starts, GC paused as the reader does) building nothing but ``session_id``."""
    import gc
    from typing import TypedDict

    import msgspec

    from radar.data import reader

    data = bytearray(path.read_bytes())
    starts = reader._anchor_starts(data, 0, len(data))
    pieces, first = [], 0
    for i in range(1, len(starts) + 1):
        last = i == len(starts)
        if last or starts[i] - starts[first] >= reader.CHUNK_SIZE:
            end = data.rindex(b"]") if last else data.rindex(b",", 0, starts[i])
            pieces.append(b"[" + bytes(data[starts[first]:end]) + b"]")
            first = i
    only_id = msgspec.json.Decoder(list[TypedDict("OnlyId", {"session_id": int})])
    gc.disable()
    started = time.process_time()
    for piece in pieces:
        only_id.decode(piece)
    spent = time.process_time() - started
    gc.enable()
    return spent


def run_measurement(argv: list[str]) -> None:
    """Child entry: ``--measure KIND ARG PATH...``; prints one JSON line."""
    kind, arg, paths = argv[0], argv[1], argv[2:]
    if kind == "reader_at":           # import time is not part of the step
        load_reader(arg)
    module = {"reader": "radar.data.reader", "prepare": "radar.data.cache_build",
              "gather": "radar.data.cache"}.get(kind)
    if module:                      # import time is not part of the step
        importlib.import_module(module)
    cpu_before = cpu_seconds()
    if kind == "json_load":
        result = measure_json_load(paths)
    elif kind == "reader":
        result = measure_reader(paths, with_tokens=arg == "tokens")
    elif kind == "reader_at":
        result = measure_reader(paths, with_tokens=False, source=arg)
    elif kind == "reader_split":
        result = reader_time_split(Path(paths[0]))
    elif kind == "prepare":
        workers, cache_dir = arg.split(":", 1)
        result = measure_prepare(paths, int(workers), cache_dir)
    else:
        order, cache_dir = arg.split(":", 1)
        result = measure_gather(paths, cache_dir, order)
    result["peak_rss_mb"] = peak_rss_mb()
    result["cpu_seconds"] = cpu_seconds() - cpu_before
    print(json.dumps(result))


# ---------------------------------------------------------------- driver (parent side)

def measure(kind: str, arg: str, paths: list[Path], repeat: int) -> dict:
    """Best (fastest) of ``repeat`` runs, each in a fresh process: the machine may be shared."""
    command = [sys.executable, __file__, "--measure", kind, arg, *map(str, paths)]
    runs = []
    for _ in range(repeat):
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda run: run["seconds"])


def measure_alternating(steps: list[tuple[str, str]], path: Path, repeat: int) -> list[dict]:
    """Best of ``repeat`` runs for each ``(kind, arg)`` step, the steps taking turns, so a
    load that comes and goes on a shared machine falls on all of them alike."""
    runs: list[list[dict]] = [[] for _ in steps]
    for _ in range(repeat):
        for step_runs, (kind, arg) in zip(runs, steps):
            command = [sys.executable, __file__, "--measure", kind, arg, str(path)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            step_runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return [min(step_runs, key=lambda run: run["seconds"]) for step_runs in runs]


def reader_at(revision: str, workdir: Path) -> Path:
    """The reader module as it was at a git revision, saved under ``workdir``."""
    source = subprocess.run(["git", "show", f"{revision}:radar/data/reader.py"], check=True,
                            capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout
    path = workdir / f"reader_at_{revision}.py"
    path.write_text(source, encoding="utf-8")
    return path


def machine_description() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs (nproc), {model}, {memory:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def row(step: str, file: str, size_mb: float, result: dict, baseline: float | None) -> str:
    seconds = result["seconds"]
    rate = size_mb / seconds if size_mb else None
    ratio = f"{rate / baseline:.1f}x" if baseline and rate else ""
    rate_text = f"{rate:.0f}" if rate else ""
    return (f"| {step} | {file} | {size_mb:.0f} | {seconds:.2f} | {result['cpu_seconds']:.2f} | "
            f"{rate_text} | {result['sessions'] / seconds:,.0f} | {result['peak_rss_mb']:.0f} | "
            f"{ratio} |")


def generate(workdir: Path, size_mb: float, layout: str) -> list[tuple[str, Path]]:
    """The two day files (reused when --workdir already holds them at this size)."""
    layouts = {"mixed": ("indent", "compact"), "indent": ("indent", "indent"),
               "compact": ("compact", "compact")}[layout]
    files = []
    for (name, padded), file_layout, seed in zip(
            [("unpadded", False), ("padded512", True)], layouts, (1, 2)):
        path = workdir / f"preprocessed_logs_2025-07-0{seed}.json"
        marker = workdir / f"{path.name}.{name}.{file_layout}.{size_mb:g}MB"
        if not marker.exists():
            started = time.perf_counter()
            n = write_day_file(path, size_mb, padded, file_layout, seed)
            marker.write_text(str(n))
            print(f"generated {path.name}: {name}, {file_layout}, {n:,} sessions, "
                  f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
        files.append((f"{name} ({file_layout})", path))
    return files


def compare_readers(files: list[tuple[str, Path]], before: Path, revision: str,
                    repeat: int) -> list[str]:
    """json.load, the reader at ``revision`` and the current one (default fields), taking
    turns run by run."""
    header = "| step | file | MB | seconds | CPU s | MB/s | sessions/s | peak RSS MB | vs json.load |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, path in files:
        size = path.stat().st_size / 1e6
        steps = [("json_load", "-"), ("reader_at", str(before)), ("reader", "default")]
        loaded, old, new = measure_alternating(steps, path, repeat)
        baseline = size / loaded["seconds"]
        lines.append(row("json.load", label, size, loaded, None))
        lines.append(row(f"iter_sessions (default fields), reader at {revision}", label, size,
                         old, baseline))
        lines.append(row("iter_sessions (default fields), this reader", label, size, new,
                         baseline))
    return lines


def copies_for_prepare(files: list[tuple[str, Path]], workdir: Path) -> list[Path]:
    """Four day files for the prepare runs: the two generated ones and a link to each."""
    paths = [path for _, path in files]
    for i, path in enumerate(list(paths)):
        twin = workdir / f"preprocessed_logs_2025-07-1{i}.json"
        if not twin.exists():
            try:
                os.link(path, twin)
            except OSError:
                shutil.copyfile(path, twin)
        paths.append(twin)
    return paths


def time_split_table(files: list[tuple[str, Path]]) -> list[str]:
    """Where one default-fields pass spends its CPU time, per file (one fresh process each)."""
    splits = []
    for _, path in files:
        command = [sys.executable, __file__, "--measure", "reader_split", "-", str(path)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        splits.append(json.loads(done.stdout.strip().splitlines()[-1]))
    lines = ["| CPU seconds | " + " | ".join(label for label, _ in files) + " |",
             "|---|" + "---:|" * len(files)]
    names = [name for name in splits[0] if name not in ("peak_rss_mb", "cpu_seconds")]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{split.get(name, 0.0):.3f}"
                                                   for split in splits) + " |")
    return lines


def run_benchmark(workdir: Path, size_mb: float, layout: str, repeat: int,
                  reader_only: bool = False, compare_reader: str | None = None,
                  time_split: bool = False) -> list[str]:
    files = generate(workdir, size_mb, layout)
    if time_split:
        return time_split_table(files)
    if compare_reader:
        return compare_readers(files, reader_at(compare_reader, workdir), compare_reader, repeat)
    cache_dir = workdir / "cache"
    header = "| step | file | MB | seconds | CPU s | MB/s | sessions/s | peak RSS MB | vs json.load |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, path in files:
        size = path.stat().st_size / 1e6
        baseline_result = measure("json_load", "-", [path], repeat)
        baseline = size / baseline_result["seconds"]
        lines.append(row("json.load", label, size, baseline_result, None))
        lines.append(row("iter_sessions (default fields)", label, size,
                         measure("reader", "default", [path], repeat), baseline))
        lines.append(row("iter_sessions (+ token_ids, attention_mask)", label, size,
                         measure("reader", "tokens", [path], repeat), baseline))
    if reader_only:
        return lines
    paths = copies_for_prepare(files, workdir)
    total = sum(path.stat().st_size for path in paths) / 1e6
    headroom = parallel_headroom()
    for workers in (1, 2):
        result = measure("prepare", f"{workers}:{cache_dir}", paths, repeat)
        lines.append(row(f"prepare_files, {workers} worker(s)", f"{len(paths)} files", total,
                         result, None))
    for label, path in files:
        for order in ("shuffled", "sequential"):
            result = measure("gather", f"{order}:{cache_dir}", [path], repeat)
            lines.append(row(f"cache gather, batch 256, {order}", label, 0, result, None))
    note = (f"Parallel headroom just before the prepare runs: two CPU-bound processes ran at "
            f"{headroom:.2f}x the throughput of one (2.00x = two idle cores).")
    lines += ["", note]
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        run_measurement(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--spin":
        spin()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300.0, help="size of each day file")
    parser.add_argument("--quick", action="store_true", help="30 MB files: a smoke run")
    parser.add_argument("--layout", choices=["mixed", "indent", "compact"], default="mixed",
                        help="mixed: unpadded file indent=2, padded file compact")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temp)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the best counts")
    parser.add_argument("--reader-only", action="store_true",
                        help="only json.load and iter_sessions (no prepare, no cache reads)")
    parser.add_argument("--time-split", action="store_true",
                        help="where one reader pass spends its CPU time (nothing else)")
    parser.add_argument("--compare-reader", metavar="REVISION",
                        help="json.load, the reader at this git revision and this one, "
                             "default fields, taking turns (nothing else)")
    args = parser.parse_args()
    size_mb = 30.0 if args.quick else args.size_mb
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="radar-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        load_before = os.getloadavg()[0]
        lines = run_benchmark(workdir, size_mb, args.layout, max(1, args.repeat),
                              args.reader_only, args.compare_reader, args.time_split)
        load_after = os.getloadavg()[0]
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"Machine: {machine_description()}; 1-minute load average {load_before:.1f} "
          f"before, {load_after:.1f} after")
    print(f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; command: python benchmarks/ingest.py "
          + " ".join(sys.argv[1:]))
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
