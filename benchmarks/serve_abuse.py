"""`radar serve` under three kinds of abuse, with a stand-in model of known cost.

    python benchmarks/serve_abuse.py [--only slow] [--slow-clients 1000] [--slow-seconds 30]
                                     [--server-fd-limit 1024] [--unguarded]

flood: 30 concurrent `curl` processes each POST a ~7 MiB JSON body to /v1/score
without the bearer token, while this process polls /v1/health every 10 ms; prints
the wall time until all 30 are answered, their status codes and the worst health
latency. abandoned: three clients POST 1,000 sessions each (10 s of model time
apiece) and give up after 1 s; then one client POSTs a single session and we time
its answer. slow: --slow-clients connections each send an endless request header one
byte a second (reconnecting when closed) for --slow-seconds while /v1/health is polled
every 100 ms; prints the worst health latency, the server's peak RSS, its log size,
and how the slow connections ended. The server is `radar.serve.app.create_app` in a
subprocess, served as `radar serve` serves it (`radar.serve.connections.uvicorn_config`:
header and body deadlines, connection cap, rate-limited log; `--unguarded`: plain
uvicorn as before), with the default settings (`--max-batch-sessions 256`), token
`s3cret` for flood, and a stand-in model that sleeps --ms-per-session per session
scored, so the numbers measure the server, not a network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

SERVER = """
import sys, time
import uvicorn
from radar.serve.app import ServeSettings, create_app

class StandIn:
    name, device, loaded, info = "stand-in", "cpu", {"stand-in": None}, {}
    def warm_up(self):
        pass
    def score(self, groups):
        time.sleep(sum(map(len, groups)) * float(sys.argv[3]) / 1000)
        return [[{"is_anomaly": False, "anomaly_score": 0.0} for _ in g] for g in groups]

token = sys.argv[2] or None
settings = ServeSettings(run_dir=".", token=token)
app = create_app(settings, loader=StandIn)
if sys.argv[4] == "guarded":
    from radar.serve.connections import uvicorn_config
    uvicorn.Server(uvicorn_config(app, header_timeout_s=settings.header_timeout_s,
                                  max_connections=settings.max_connections,
                                  log_level="warning", host="127.0.0.1",
                                  port=int(sys.argv[1]))).run()
else:
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


GUARDED = "guarded"
SERVER_FD_LIMIT = None      # --server-fd-limit: the server's `ulimit -n` (soft and hard)


def start_server(token: str, ms_per_session: float, log=None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-c", SERVER, str(port), token, str(ms_per_session), GUARDED]
    if SERVER_FD_LIMIT:
        command = ["sh", "-c", f'ulimit -n {SERVER_FD_LIMIT} && exec "$@"', "sh", *command]
    proc = subprocess.Popen(command, stderr=log, stdout=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health").status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def flood(workdir: Path, ms_per_session: float) -> None:
    body = workdir / "body.json"
    session = {"event_sequence": list(range(200)), "service_name": "x"}
    body.write_text(json.dumps({"sessions": [session] * 8000}))
    proc, url = start_server("s3cret", ms_per_session)
    worst, stop = [0.0], threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                began = time.perf_counter()
                client.get(url + "/v1/health")
                worst[0] = max(worst[0], time.perf_counter() - began)
                time.sleep(0.01)

    prober = threading.Thread(target=probe)
    prober.start()
    began = time.perf_counter()
    curls = [subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               "-H", "Content-Type: application/json",
                               "--data-binary", f"@{body}", url + "/v1/score"],
                              stdout=subprocess.PIPE, text=True) for _ in range(30)]
    codes = sorted({curl.communicate()[0] for curl in curls})
    elapsed = time.perf_counter() - began
    stop.set()
    prober.join()
    proc.terminate()
    proc.wait()
    print(f"flood: 30 x {body.stat().st_size / 2**20:.1f} MiB without token answered in "
          f"{elapsed:.2f} s, status {codes}, worst /v1/health latency {worst[0] * 1000:.0f} ms")


def abandoned(ms_per_session: float) -> None:
    proc, url = start_server("", ms_per_session)
    heavy = {"sessions": [{"event_sequence": [1, 2, 3]}] * 1000}

    def give_up() -> None:
        try:
            httpx.post(url + "/v1/score", json=heavy, timeout=1.0)
        except httpx.TimeoutException:
            pass

    clients = [threading.Thread(target=give_up) for _ in range(3)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    began = time.perf_counter()
    answer = httpx.post(url + "/v1/score", json={"sessions": [{"event_sequence": [1]}]},
                        timeout=120)
    waited = time.perf_counter() - began
    proc.terminate()
    proc.wait()
    print(f"abandoned: 3 x 1000 sessions dropped after 1 s, then one session answered "
          f"{answer.status_code} in {waited:.2f} s")


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _slow_sender(port: int, stop: asyncio.Event, ended: dict) -> None:
    """One connection at a time, one header byte a second, reconnecting when closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            ended["connect failed"] = ended.get("connect failed", 0) + 1
            ended["last error"] = str(exc)
            await asyncio.sleep(1)
            continue
        head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        sent, how = 0, "still open at the end"
        try:
            while not stop.is_set():
                writer.write(head[sent:sent + 1] if sent < len(head) else b"a")
                await writer.drain()
                sent += 1
                try:
                    answer = await asyncio.wait_for(reader.read(200), 1.0)
                except asyncio.TimeoutError:
                    continue
                status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else ""
                how = f"closed by the server with {status}" if status else "closed by the server"
                break
        except OSError:
            how = "reset by the server"
        writer.close()
        ended[how] = ended.get(how, 0) + 1


def slow(workdir: Path, ms_per_session: float, clients: int, seconds: float) -> None:
    log_path = workdir / f"slow-{GUARDED}.log"
    with open(log_path, "wb") as log:
        proc, url = start_server("", ms_per_session, log)
    port = int(url.rsplit(":", 1)[1])
    worst, answered, failed, stop = [0.0], [0], [0], threading.Event()
    peak = [_rss_mib(proc.pid)]
    idle_rss = peak[0]

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    ok = client.get(url + "/v1/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                worst[0] = max(worst[0], time.perf_counter() - began)
                answered[0] += ok
                failed[0] += not ok
                peak[0] = max(peak[0], _rss_mib(proc.pid))
                time.sleep(0.1)

    async def crowd() -> dict:
        ended: dict = {}
        done = asyncio.Event()
        tasks = [asyncio.create_task(_slow_sender(port, done, ended)) for _ in range(clients)]
        await asyncio.sleep(seconds)
        done.set()
        await asyncio.gather(*tasks)
        return ended

    prober = threading.Thread(target=probe)
    prober.start()
    ended = asyncio.run(crowd())
    stop.set()
    prober.join()
    proc.terminate()
    proc.wait()
    limit = f", server ulimit -n {SERVER_FD_LIMIT}" if SERVER_FD_LIMIT else ""
    print(f"slow ({GUARDED}{limit}): {clients} connections sending headers at 1 byte/s for "
          f"{seconds:g} s: /v1/health {answered[0]} answered, {failed[0]} failed, worst "
          f"{worst[0] * 1000:.0f} ms; server RSS {idle_rss:.0f} -> peak {peak[0]:.0f} MiB; "
          f"log {os.path.getsize(log_path):,} bytes; slow connections: "
          + ", ".join(f"{count} {how}" for how, count in sorted(ended.items())
                      if how != "last error"))


def main() -> None:
    global GUARDED, SERVER_FD_LIMIT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-serve-abuse"))
    parser.add_argument("--ms-per-session", type=float, default=10.0)
    parser.add_argument("--only", choices=["flood", "abandoned", "slow"])
    parser.add_argument("--slow-clients", type=int, default=1000)
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument("--unguarded", action="store_true",
                        help="plain uvicorn, without radar serve's connection guards")
    parser.add_argument("--server-fd-limit", type=int,
                        help="the server's descriptor limit (as `ulimit -n N` before it)")
    args = parser.parse_args()
    SERVER_FD_LIMIT = args.server_fd_limit
    if args.unguarded:
        GUARDED = "unguarded"
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "flood"):
        flood(args.workdir, args.ms_per_session)
    if args.only in (None, "abandoned"):
        abandoned(args.ms_per_session)
    if args.only in (None, "slow"):
        slow(args.workdir, args.ms_per_session, args.slow_clients, args.slow_seconds)


if __name__ == "__main__":
    main()
