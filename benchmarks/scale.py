"""The full job at a fraction of the user's scale, stage by stage: time, memory, disk.

    python benchmarks/scale.py --scale 1 --workdir /tmp/radar-scale-1      # ~1 GB of day files
    nice -n 10 python benchmarks/scale.py --scale 14 --workdir /tmp/radar-scale-14

Generates ``--days`` (32, a tenth of the user's 324) day files with the user's profile
(weekdays lognormal around the mean size, capped at 1.6 GB; weekends ~2% of a weekday;
compact JSON arrays; ``token_ids`` / ``attention_mask`` padded to 512; ``original_logs``
one line per event; about 5 KB per session), then runs the CLI stages in turn, each in
its own process tree:

  validate -> prepare (all cores) -> split (latest 10% of days validate) ->
  train + calibrate (the test stage: the 10 newest training days, a model and step
  count sized for a CPU, printed) -> detect every validation day
  (python -m radar.shard, one process per core) -> analyze the results ->
  radar run over the same stage (reuses the trained model: calibrate, detect, report) ->
  radar report on that run's folder.

Per stage it records wall time, CPU time and the peak RSS of the stage's whole process
tree (sampled every 0.2 s from /proc; each finished stage is appended to
WORKDIR/logs/stages.jsonl), throughput and the disk the stage's output takes. Prints a
Markdown table and writes it, with the settings, to WORKDIR/scale.json.

``--stages`` runs some of the stages only (e.g. ``train`` once, then ``run,report`` to
measure the model's reuse; ``detect-all`` scores every day file in one ``radar detect``
with ``--model`` (default: the trained one), so two data sizes can share one model;
``report-rows`` reports on a copy of the run whose results file holds ``--report-rows``
records, the run's own cycled), and ``--code DIR`` runs them with another checkout of RADAR
(e.g. ``git worktree add /tmp/wt-before COMMIT``), so one data set and one model measure
the code before and after a change::

    python benchmarks/scale.py --scale 0.05 --days 12 --steps 20 --stages train \
        --workdir /tmp/radar-scale-tiny
    python benchmarks/scale.py --scale 0.05 --days 12 --steps 20 --stages run,report \
        --code /tmp/wt-before --workdir /tmp/radar-scale-tiny
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_CONFIG = ROOT / "configs" / "training_config_test.yaml"
START_DAY = dt.date(2025, 6, 2)           # a Monday
MAX_DAY_BYTES = 1.6e9
SERVICES = ["gateway"] * 5 + ["research"] * 3 + ["manager"] * 2 + ["auth", "billing", "search"]
LEVELS = ["INFO"] * 12 + ["DEBUG"] * 4 + ["WARN", "ERROR"]
TEXTS = ["GET /api/v1/items/{n} 200 {ms}ms user=u{n}", "cache miss key=item:{n} fallback=db",
         "요청 처리 완료: user=u{n} 소요시간={ms}ms", "Retrying upstream call backoff={ms}ms",
         "Slow query detected: SELECT * FROM items WHERE id = {n} ({ms} ms)",
         "payload={{\"id\": {n}, \"status\": \"ok\"}}"]
# A CPU-sized LogBERT for the rehearsal's training stage (the user's is BERT-base on a GPU).
CPU_MODEL = ["models.logbert.hidden_size=64", "models.logbert.num_hidden_layers=2",
             "models.logbert.num_attention_heads=4", "models.logbert.intermediate_size=128",
             "training.batch_size=32", "training.num_workers=0", "training.log_interval=50",
             "training.save_interval=100", "detection.batch_size=128"]


# ---------------------------------------------------------------- day files

def day_sizes(scale_gb: float, days: int, seed: int) -> list[float]:
    """Bytes per day: weekdays lognormal(0, 0.5) around the mean, weekends ~2% of one."""
    rnd = random.Random(seed)
    weights = [0.02 if (START_DAY + dt.timedelta(d)).weekday() >= 5
               else rnd.lognormvariate(0.0, 0.5) for d in range(days)]
    total = sum(weights)
    return [min(MAX_DAY_BYTES, scale_gb * 1e9 * w / total) for w in weights]


def log_lines(rnd: random.Random) -> list[str]:
    return [f"2025-06-02 {rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"
            f".{rnd.randrange(1000):03d} {rnd.choice(LEVELS)} [{rnd.choice(SERVICES)}] "
            + rnd.choice(TEXTS).format(n=rnd.randrange(10**6), ms=rnd.randrange(1, 900))
            for _ in range(4000)]


def session_text(rnd: random.Random, session_id: int, lines: list[str]) -> str:
    length = max(1, min(2000, int(rnd.lognormvariate(3.0, 0.9))))
    events = [min(int(rnd.paretovariate(1.2)), 3000) for _ in range(length)]
    tokens = [101, *events[:510], 102]
    pad = [0] * (512 - len(tokens))
    return json.dumps({
        "session_id": session_id, "event_sequence": events, "token_ids": tokens + pad,
        "attention_mask": [1] * len(tokens) + pad, "has_error": rnd.random() < 0.03,
        "has_warn": rnd.random() < 0.1, "service_name": rnd.choice(SERVICES),
        "original_logs": [rnd.choice(lines) for _ in events]}, ensure_ascii=False)


def write_day(args: tuple[Path, float, int]) -> tuple[str, int, int]:
    """One compact day file of about ``size`` bytes; (name, sessions, bytes)."""
    path, size, seed = args
    rnd = random.Random(seed)
    lines, written, n = log_lines(rnd), 0, 0
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write("[")
        while written < size or n == 0:
            text = session_text(rnd, n, lines)
            if n:
                handle.write(", ")
            handle.write(text)
            written += len(text) + 2
            n += 1
        handle.write("]")
    partial.rename(path)
    return path.name, n, path.stat().st_size


def generate(data: Path, scale_gb: float, days: int, workers: int) -> dict:
    data.mkdir(parents=True, exist_ok=True)
    jobs = [(data / f"preprocessed_logs_{START_DAY + dt.timedelta(d)}.json", size, d)
            for d, size in enumerate(day_sizes(scale_gb, days, seed=0))]
    todo = [job for job in jobs if not job[0].is_file()]
    with multiprocessing.Pool(workers) as pool:
        made = pool.map(write_day, sorted(todo, key=lambda job: -job[1]))
    sizes = [job[0].stat().st_size for job in jobs]
    return {"files": len(jobs), "bytes": sum(sizes), "min_file": min(sizes),
            "max_file": max(sizes), "sessions_written": sum(n for _, n, _ in made)}


# ---------------------------------------------------------------- measuring a stage

def tree_rss(root: int) -> int:
    """Summed RSS (bytes) of ``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return sum(rss.get(pid, 0) for pid in members)


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


STAGES = ("validate", "prepare", "split", "train", "detect", "analyze", "run", "report",
          "detect-all", "report-rows")


@dataclass(frozen=True)
class Bench:
    """Where the rehearsal runs: its folder, the RADAR checkout that runs each stage, and
    which stages to run."""

    work: Path
    code: Path = ROOT
    stages: tuple[str, ...] = STAGES
    report_rows: int = 1_000_000     # the report-rows stage's synthetic results
    model: Path | None = None        # what detect-all scores with (default: the trained one)

    def env(self) -> dict[str, str]:
        """The stages import RADAR from ``code`` (first on the path), not the installed one."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.code),
                                                          env.get("PYTHONPATH")]))
        return env


def run_stage(name: str, command: list[str], log_dir: Path, bench: Bench | None = None
              ) -> dict:
    """Run one CLI stage: wall seconds, CPU seconds of its whole process tree (what a
    busy shared machine does not inflate) and the peak RSS of the tree."""
    bench = bench or Bench(log_dir.parent)
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(command)}", flush=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "w") as log:
        start, peak, cpu = time.perf_counter(), 0, children_cpu_seconds()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=bench.code, env=bench.env())
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
    cpu = children_cpu_seconds() - cpu
    if process.returncode != 0:
        raise SystemExit(f"{name} failed (exit {process.returncode}); see {log_dir / name}.log")
    row = {"stage": name, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak / 2**20,
           "code": str(bench.code)}
    with open(log_dir / "stages.jsonl", "a") as done:     # kept even if a later stage fails
        done.write(json.dumps(row) + "\n")
    return row


def disk_mb(*paths: Path) -> float:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return total / 1e6


# ---------------------------------------------------------------- the rehearsal

def radar_cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "radar.cli", *map(str, args)]


@dataclass(frozen=True)
class Stage:
    """What the test stage trains on and reports on: the ``limit_files`` newest day files
    (0: all), of which the latest ``val_fraction`` validate (radar run scores them)."""

    steps: int = 300
    limit_files: int = 10
    val_fraction: float = 0.1


def training_args(data: Path, cache: Path, output: Path, stage: Stage) -> list[str]:
    settings = [f"data.cache_dir={cache}", f"output_dir={output}",
                f"data.limit_files={stage.limit_files}", f"data.val_fraction={stage.val_fraction}",
                f"training.total_steps={stage.steps}", *CPU_MODEL]
    return ["--detector", "logbert", "--config", str(TEST_CONFIG), "--data", str(data),
            *[arg for item in settings for arg in ("--set", item)]]


def validation_days(split_dir: Path, data: Path, into: Path) -> list[Path]:
    """The split's validation days, linked into one folder for the scoring stage."""
    into.mkdir(parents=True, exist_ok=True)
    days = []
    for line in (split_dir / "val_files.txt").read_text().splitlines():
        source = data / Path(line.strip()).name
        if line.strip():
            link = into / source.name
            if not link.exists():
                link.symlink_to(source)
            days.append(source)
    return days


def synthetic_run(source: Path, into: Path, rows: int, days: int = 32) -> Path:
    """A copy of run folder ``source`` whose results file holds ``rows`` records: the
    run's own records cycled, with fresh session ids, spread over ``days`` day files in
    order (for `radar report` at a size no CPU here could score)."""
    into.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.suffix in (".yaml", ".json", ".jsonl", ".txt") and (
                path.name != "anomaly_results.json" and not path.name.startswith("report")):
            (into / path.name).write_bytes(path.read_bytes())
    records = json.loads((source / "anomaly_results.json").read_text())
    with open(into / "anomaly_results.json", "w", encoding="utf-8") as out:
        out.write("[")
        for i in range(rows):
            day = START_DAY + dt.timedelta(i * days // rows)
            record = dict(records[i % len(records)], session_id=i,
                          file=f"preprocessed_logs_{day}.json")
            out.write((",\n" if i else "\n") + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n")
    return into


def count_sessions(results: Path) -> int:
    from radar.results import iter_results

    return sum(1 for _ in iter_results(results))


def rate(amount: float, row: dict, unit: str) -> str:
    """Per wall second and per CPU second of the stage's process tree."""
    return (f"{amount / row['seconds']:,.1f} {unit}/s wall, "
            f"{amount / max(row['cpu_seconds'], 1e-9):,.1f} {unit}/CPU-s")


def rehearse(bench: Bench, stage_settings: Stage, workers: int) -> list[dict]:
    work = bench.work
    data, cache, run, logs = work / "data", work / "cache", work / "run", work / "logs"
    input_mb = disk_mb(data)
    rows: list[dict] = []

    def stage(key: str, name: str, command: list[str], **extra: str) -> dict | None:
        if key not in bench.stages:
            return None
        rows.append(run_stage(name, command, logs, bench))
        rows[-1].update(extra)
        return rows[-1]

    row = stage("validate", "validate", radar_cli("validate", data, "--workers", workers,
                                                  "--json"), disk=f"input {input_mb:,.0f} MB")
    if row:
        row["throughput"] = rate(input_mb, row, "MB")
    row = stage("prepare", "prepare", radar_cli("prepare", data, "--cache-dir", cache,
                                                "--workers", workers))
    if row:
        row.update(throughput=rate(input_mb, row, "MB"), disk=f"cache {disk_mb(cache):,.0f} MB")
    stage("split", "split", radar_cli("split", data, "--out", run / "split"))
    row = stage("train", "train + calibrate",
                radar_cli("train", *training_args(data, cache, run / "train", stage_settings)))
    if row:
        row.update(throughput=rate(stage_settings.steps * 32, row, "sessions"),
                   disk=f"checkpoints {disk_mb(run / 'train'):,.0f} MB")
    results = run / "anomaly_results.json"
    if "detect" in bench.stages:
        val_days = validation_days(run / "split", data, run / "validation-days")
        row = stage("detect", "detect", [sys.executable, "-m", "radar.shard", "--checkpoint",
                                         str(run / "train" / "best_model.pt"), "--input",
                                         str(run / "validation-days"), "--output", str(results),
                                         "--workers", str(workers)])
        n = count_sessions(results)
        row.update(throughput=rate(n, row, "sessions") + f" ({n:,} sessions in "
                   f"{disk_mb(*val_days):,.0f} MB of days)", disk=f"results {disk_mb(results):,.0f} MB")
    row = stage("analyze", "analyze", radar_cli("analyze", results, "--json"))
    if row:
        row["throughput"] = rate(count_sessions(results), row, "results")
    stage("run", "radar run (reuses the model)",
          radar_cli("run", *training_args(data, cache, run / "train", stage_settings)))
    row = stage("report", "radar report", radar_cli("report", run / "train"))
    if row:
        reported = run / "train" / "anomaly_results.json"
        row["throughput"] = rate(count_sessions(reported), row, "results")
        row["disk"] = f"results {disk_mb(reported):,.0f} MB"
    if "detect-all" in bench.stages:
        model = bench.model or run / "train" / "best_model.pt"
        out = run / "detect-all" / "anomaly_results.json"
        row = stage("detect-all", "radar detect (every day file, one process)",
                    radar_cli("detect", "--checkpoint", model, "--input", data, "--output",
                              out, "--cache-dir", cache))
        n = count_sessions(out)
        row["throughput"] = rate(n, row, "sessions") + f" ({n:,} sessions, model {model})"
        row["disk"] = f"results {disk_mb(out):,.0f} MB"
    if "report-rows" in bench.stages:
        synthetic = synthetic_run(run / "train", run / f"report-{bench.report_rows}",
                                  bench.report_rows)
        row = stage("report-rows", f"radar report ({bench.report_rows:,} results)",
                    radar_cli("report", synthetic))
        row["throughput"] = rate(bench.report_rows, row, "results")
        row["disk"] = f"results {disk_mb(synthetic / 'anomaly_results.json'):,.0f} MB"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="GB of day files")
    parser.add_argument("--days", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300, help="training steps (batch 32)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-scale"))
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to run, in this order: {','.join(STAGES)}")
    parser.add_argument("--limit-files", type=int, default=10,
                        help="the test stage's newest day files (0: all)")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="share of those days that validate (radar run reports on them)")
    parser.add_argument("--report-rows", type=int, default=1_000_000,
                        help="records of the report-rows stage's synthetic results file")
    parser.add_argument("--model", type=Path,
                        help="the checkpoint detect-all scores with (default: the trained one)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the RADAR checkout that runs the stages (default: this one)")
    args = parser.parse_args()
    stages = tuple(name.strip() for name in args.stages.split(",") if name.strip())
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    made = generate(args.workdir / "data", args.scale, args.days, args.workers)
    made["seconds"] = time.perf_counter() - started
    print(f"day files: {made}", flush=True)
    bench = Bench(args.workdir, args.code.resolve(), stages, args.report_rows, args.model)
    rows = rehearse(bench, Stage(args.steps, args.limit_files, args.val_fraction), args.workers)
    settings = {"scale_gb": args.scale, "days": args.days, "steps": args.steps,
                "limit_files": args.limit_files, "val_fraction": args.val_fraction,
                "workers": args.workers, "model": CPU_MODEL, "generated": made,
                "stages": list(stages), "code": str(bench.code),
                "report_rows": args.report_rows}
    (args.workdir / "scale.json").write_text(json.dumps({"settings": settings, "stages": rows},
                                                        indent=2))
    print(f"\n{made['files']} day files, {made['bytes'] / 1e9:.2f} GB "
          f"({made['min_file'] / 1e6:.0f} MB to {made['max_file'] / 1e6:.0f} MB), "
          f"{args.workers} workers, {args.steps} training steps\n")
    print("| stage | wall s | CPU s | throughput | peak RSS (MB) | disk |")
    print("|---|---:|---:|---|---:|---|")
    for row in rows:
        print(f"| {row['stage']} | {row['seconds']:.0f} | {row['cpu_seconds']:.0f} | "
              f"{row.get('throughput', '')} | {row['peak_rss_mb']:,.0f} | {row.get('disk', '')} |")


if __name__ == "__main__":
    main()
