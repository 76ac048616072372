"""Throughput and latency of `radar serve` on loopback, with and without micro-batching.

    python benchmarks/serve.py --workdir /tmp/radar-serve-bench \\
        --seconds 20 --concurrency 8 --sessions-per-request 16

Without --run it makes a demo run first (once per work folder): `radar synth` (3 days x
600 sessions, seed 7), then `radar train` with the demo config's model (LogBERT h64, 2
layers) for --train-steps steps; throughput depends on the model's size, not on how
long it trained. Then, for each mode, it starts `radar serve` in a subprocess on a free
127.0.0.1 port, waits for /v1/health, drives POST /v1/score with --concurrency clients
(one asyncio httpx client each, request bodies encoded beforehand) for --warmup then
--seconds seconds, reads the server's /metrics and stops the server:

- batched: --max-batch-sessions (default 256), concurrent requests merged;
- unbatched: --max-batch-sessions equal to one request, so every model call scores
  exactly one request (micro-batching off).

Requests carry the validation day's sessions (event_sequence, service_name, flags,
session_id) in turn. Prints requests/s, sessions/s, p50/p99 latency and the mean
sessions per model call; --json writes them too. Everything stays on loopback and
every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from cases import radar, radar_demo_config

FIELDS = ("session_id", "service_name", "event_sequence", "has_error", "has_warn")


def demo_run(work: Path, steps: int, detectors: list[str]) -> Path:
    """A trained run in ``work/run`` (made once): one detector via `radar train`,
    several via `radar run` (which writes ensemble.json)."""
    data, run = work / "data", work / "run"
    if not (data / "labels.csv").is_file():
        radar("synth", str(data), "--days", "3", "--sessions", "600", "--seed", "7",
              "--max-seq-length", "128")
    done = (run / "ensemble.json") if len(detectors) > 1 else (run / "best_model.pt")
    if not done.is_file():
        radar_demo_config("run" if len(detectors) > 1 else "train", detectors, data,
                          data / "labels.csv", run, work / "cache",
                          [f"training.total_steps={steps}", "training.log_interval=50",
                           "training.save_interval=1000"])
    return run


def request_bodies(data: Path, per_request: int) -> list[bytes]:
    day = max(data.glob("preprocessed_logs_*.json"))
    sessions = [{key: s[key] for key in FIELDS} for s in json.loads(day.read_text())]
    return [json.dumps({"sessions": sessions[i:i + per_request]}).encode()
            for i in range(0, len(sessions) - per_request + 1, per_request)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(run: Path, port: int, log_path: Path, extra: list[str]) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "RADAR_API_TOKEN"}
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "radar.cli", "serve", "--run", str(run),
                                 "--host", "127.0.0.1", "--port", str(port), *extra],
                                stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"radar serve exited with {proc.returncode}; see its log")
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"radar serve was not ready after {timeout:.0f} s")


async def drive(url: str, bodies: list[bytes], concurrency: int, warmup: float,
                seconds: float) -> dict:
    """``concurrency`` clients posting back to back; only the timed window is counted."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    latencies: list[float] = []
    counts = {"requests": 0, "errors": 0}
    headers = {"content-type": "application/json"}

    async def client(index: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            i = index
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                answer = await http.post("/v1/score", content=bodies[i % len(bodies)],
                                         headers=headers)
                done = time.perf_counter()
                i += concurrency
                if sent < measure_from or done > stop_at:
                    continue
                counts["requests"] += 1
                if answer.status_code != 200:
                    counts["errors"] += 1
                latencies.append(done - sent)

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    latencies.sort()
    n = len(latencies)
    return {**counts, "seconds": seconds,
            "p50_ms": 1000 * latencies[n // 2] if n else None,
            "p99_ms": 1000 * latencies[min(n - 1, int(0.99 * n))] if n else None}


def batch_mean(url: str) -> float | None:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line.startswith("radar_batch_sessions_"))
    count = float(values.get("radar_batch_sessions_count", 0))
    return float(values["radar_batch_sessions_sum"]) / count if count else None


def measure(mode: str, run: Path, bodies: list[bytes], args, max_batch: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = ["--max-batch-sessions", str(max_batch), "--batch-wait-ms", str(args.batch_wait_ms),
             "--device", args.device]
    proc = start_server(run, port, args.workdir / f"serve-{mode}.log", extra)
    try:
        wait_ready(url, proc)
        result = asyncio.run(drive(url, bodies, args.concurrency, args.warmup, args.seconds))
        result["mean_batch_sessions"] = batch_mean(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    good = result["requests"] - result["errors"]
    result.update(mode=mode, max_batch_sessions=max_batch,
                  requests_per_s=good / args.seconds,
                  sessions_per_s=good * args.sessions_per_request / args.seconds)
    return result


def _cell(row: dict, key: str, fmt: str) -> str:
    return "-" if row[key] is None else format(row[key], fmt)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-serve-bench"))
    parser.add_argument("--run", type=Path, help="Serve this run instead of the demo run.")
    parser.add_argument("--detector", action="append", dest="detectors",
                        help="Detector(s) of the demo run (repeatable; default logbert).")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sessions-per-request", type=int, default=16)
    parser.add_argument("--max-batch-sessions", type=int, default=256)
    parser.add_argument("--batch-wait-ms", type=float, default=2.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--modes", default="batched,unbatched")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    detectors = args.detectors or ["logbert"]
    run = args.run or demo_run(args.workdir, args.train_steps, detectors)
    data = args.workdir / "data"            # the demo run's; made for requests with --run
    if not data.is_dir():
        radar("synth", str(data), "--days", "1", "--sessions", "600", "--seed", "7",
              "--max-seq-length", "128")
    bodies = request_bodies(data, args.sessions_per_request)
    batches = {"batched": args.max_batch_sessions, "unbatched": args.sessions_per_request}
    rows = [measure(mode, run, bodies, args, batches[mode]) for mode in args.modes.split(",")]
    print(f"{args.concurrency} clients x {args.sessions_per_request} sessions/request, "
          f"{args.seconds:g} s timed after {args.warmup:g} s warm-up, run {run}")
    print("| mode | max batch | requests/s | sessions/s | p50 ms | p99 ms | sessions/call "
          "| errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['max_batch_sessions']} | {_cell(r, 'requests_per_s', '.1f')} "
              f"| {_cell(r, 'sessions_per_s', '.0f')} | {_cell(r, 'p50_ms', '.0f')} | "
              f"{_cell(r, 'p99_ms', '.0f')} | {_cell(r, 'mean_batch_sessions', '.1f')} | "
              f"{r['errors']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
