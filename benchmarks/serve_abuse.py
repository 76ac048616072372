"""`radar serve` under two kinds of abuse, with a stand-in model of known cost.

    python benchmarks/serve_abuse.py

flood: 30 concurrent `curl` processes each POST a ~7 MiB JSON body to /v1/score
without the bearer token, while this process polls /v1/health every 10 ms; prints
the wall time until all 30 are answered, their status codes and the worst health
latency. abandoned: three clients POST 1,000 sessions each (10 s of model time
apiece) and give up after 1 s; then one client POSTs a single session and we time
its answer. The server is `radar.serve.app.create_app` under uvicorn in a
subprocess, with the default settings (`--max-batch-sessions 256`), token `s3cret`
for flood, and a stand-in model that sleeps --ms-per-session per session scored, so
the numbers measure the server, not a network.
"""

from __future__ import annotations

import argparse
import json
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
app = create_app(ServeSettings(run_dir=".", token=token), loader=StandIn)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(token: str, ms_per_session: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), token,
                             str(ms_per_session)])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/radar-serve-abuse"))
    parser.add_argument("--ms-per-session", type=float, default=10.0)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    flood(args.workdir, args.ms_per_session)
    abandoned(args.ms_per_session)


if __name__ == "__main__":
    main()
