"""`radar serve`: the real server on a free loopback port (uvicorn), called over HTTP (httpx).

Two tiny runs are trained once (a single LogBERT run and a LogBERT + DeepLog ensemble);
each test starts its own server in a thread with the settings it needs, the models
loaded once per run. Results are checked against `radar detect` on the same sessions,
written as a day file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import torch
import uvicorn
from click.testing import CliRunner

from radar.cli import cli
from radar.data.synth import generate
from radar.serve.app import ServeSettings, create_app
from radar.serve.batching import MicroBatcher, QueueFull
from radar.serve.connections import RepeatFilter, log_config, uvicorn_config
from radar.serve.scoring import load_serving_model
from tests.test_jobs import run_args

VAL_DAY = "preprocessed_logs_2025-02-26.json"
DEEPLOG_TINY = ["--set", "models.deeplog.embedding_size=16", "--set",
                "models.deeplog.hidden_size=16"]


# -- fixtures ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two trained runs over the same generated data: root/run (one detector, `radar
    train`: trained and calibrated, no report) and root/ens (LogBERT + DeepLog, `radar run`,
    which writes ensemble.json)."""
    root = tmp_path_factory.mktemp("serve")
    generate(root / "data", days=3, sessions=150, anomaly_rate=0.1, seed=3)
    single = CliRunner().invoke(cli, ["train", "--detector", "logbert", *run_args(root)])
    assert single.exit_code == 0, single.output
    multi = CliRunner().invoke(cli, ["run", "--detector", "logbert", "--detector", "deeplog",
                                     *run_args(root), "--set", f"output_dir={root / 'ens'}",
                                     *DEEPLOG_TINY])
    assert multi.exit_code == 0, multi.output
    return {"root": root, "single": root / "run", "ensemble": root / "ens"}


@pytest.fixture(scope="module")
def models(runs):
    """Each run's detectors, loaded once and shared by every server started below."""
    cpu = torch.device("cpu")
    return {kind: load_serving_model(runs[kind], cpu) for kind in ("single", "ensemble")}


@contextlib.contextmanager
def serving(app):
    """Run ``app`` under uvicorn on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    settings = app.state.radar.settings
    server = uvicorn.Server(uvicorn_config(app, header_timeout_s=settings.header_timeout_s,
                                           max_connections=settings.max_connections,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def wait_ready(client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/v1/health").status_code != 200:
        assert time.monotonic() < deadline, "models never became ready"
        time.sleep(0.02)


@contextlib.contextmanager
def server_for(runs, models, kind="single", token=None, **limits):
    settings = ServeSettings(run_dir=runs[kind], token=token, **limits)
    with serving(create_app(settings, loader=lambda: models[kind])) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        wait_ready(client)
        yield client


def day_sessions(runs, n=None) -> list[dict]:
    sessions = json.loads((runs["root"] / "data" / VAL_DAY).read_text())
    return sessions[:n] if n else sessions


def long_session() -> dict:
    """Longer than the model window (62 events here), with an id never seen in training."""
    events = [126, 256, 86, 57, 999_999] * 30
    return {"session_id": 90001, "session_key": "long-1", "service_name": "gateway",
            "event_sequence": events, "has_error": True, "has_warn": False}


def detect_records(runs, tmp_path, sessions, kind) -> list[dict]:
    """What `radar detect` writes for ``sessions`` (saved as a day file first)."""
    day = tmp_path / "in" / "preprocessed_logs_2025-03-01.json"
    day.parent.mkdir(exist_ok=True)
    day.write_text(json.dumps(sessions))
    out = tmp_path / f"{kind}.json"
    which = (["--checkpoint", str(runs[kind] / "best_model.pt")] if kind == "single"
             else ["--ensemble", str(runs[kind])])
    result = CliRunner().invoke(cli, ["detect", *which, "--input", str(day), "--output",
                                      str(out), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def score_concurrently(base_url: str, parts: list[list[dict]]) -> list[dict]:
    """POST each part at the same time (so the server may merge them); results in order."""
    async def go():
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            answers = await asyncio.gather(*[client.post("/v1/score", json={"sessions": part})
                                             for part in parts])
        for answer in answers:
            assert answer.status_code == 200, answer.text
        return [record for answer in answers for record in answer.json()["results"]]
    return asyncio.run(go())


def explained(item: dict) -> tuple:
    """An explanation item without its probability (compared with a tolerance). Ties in
    NLL (every unseen event has the same) keep position order, whichever sessions shared
    the batch, so positions compare exactly."""
    return item["position"], item["event_id"], item["kind"], item["rank"]


def assert_same_records(served: list[dict], detected: list[dict]) -> None:
    assert len(served) == len(detected)
    for got, want in zip(served, detected):
        assert got.pop("file") is None
        want.pop("file")
        want.setdefault("session_key", None)    # a day file without keys has none at all
        assert set(got) == set(want)
        for key, value in want.items():
            if key in ("anomaly_score", "max_nll", "mean_nll", "miss_ratio", "distance"):
                assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
            elif key == "detectors":
                for name, verdict in value.items():
                    assert got[key][name]["flagged"] == verdict["flagged"]
                    # float32 scores: batch composition moves them by ~1e-7 absolute
                    assert got[key][name]["score"] == pytest.approx(verdict["score"], rel=1e-5,
                                                                    abs=1e-6)
                    assert got[key][name]["normalized"] == pytest.approx(verdict["normalized"],
                                                                         rel=1e-5, abs=1e-6)
            elif key == "top_positions":
                assert [explained(p) for p in got[key]] == [explained(p) for p in value]
                assert [p["probability"] for p in got[key]] == pytest.approx(
                    [p["probability"] for p in value], rel=1e-4, abs=1e-7)
            else:
                assert got[key] == value, key


# -- results equal radar detect ----------------------------------------------------------
@pytest.mark.parametrize("kind", ["single", "ensemble"])
def test_results_equal_radar_detect(runs, models, tmp_path, kind):
    sessions = day_sessions(runs) + [long_session()]
    detected = detect_records(runs, tmp_path, sessions, kind)
    with server_for(runs, models, kind, max_batch_sessions=512) as client:
        # Four requests at once, merged into micro-batches by the server.
        served = score_concurrently(str(client.base_url),
                                    [sessions[:7], sessions[7:60], sessions[60:120],
                                     sessions[120:]])
        metrics = client.get("/metrics").text
    assert_same_records(served, detected)
    long = served[-1]
    assert long["length"] == 150 and long["session_key"] == "long-1"
    if kind == "ensemble":
        assert set(long["detectors"]) == {"logbert", "deeplog"}
        assert long["severity"] != "NORMAL"              # has_error raises it at least to LOW
    assert f"radar_sessions_scored_total {len(sessions)}" in metrics


def test_optional_fields_default_and_echo(runs, models):
    with server_for(runs, models) as client:
        answer = client.post("/v1/score", json={"sessions": [
            {"event_sequence": [126, 256, 86]},
            {"event_sequence": [57, 57], "session_key": "k-2", "session_id": -5,
             "token_ids": [101, 57, 57, 102], "original_logs": ["a", "b"]}]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "logbert" and body["n_sessions"] == 2
    first, second = body["results"]
    assert first["session_id"] is None and first["session_key"] is None
    assert first["service_name"] == "unknown" and first["has_error"] is False
    assert first["file"] is None and first["length"] == 3
    assert second["session_id"] == -5 and second["session_key"] == "k-2"
    assert body["n_anomalies"] == sum(r["is_anomaly"] for r in body["results"])


# -- bad bodies and limits ---------------------------------------------------------------
@pytest.mark.parametrize("body, loc, fragment", [
    ({"sessions": [{"event_sequence": [1, "2"]}]},
     ["body", "sessions", 0, "event_sequence", 1], "valid integer"),
    ({"sessions": [{"event_sequence": [1, 2.0]}]},
     ["body", "sessions", 0, "event_sequence", 1], "valid integer"),
    ({"sessions": [{"event_sequence": [True]}]},
     ["body", "sessions", 0, "event_sequence", 0], "valid integer"),
    ({"sessions": [{"event_sequence": [3]}, {"event_sequence": [-1]}]},
     ["body", "sessions", 1, "event_sequence", 0], "greater than or equal to 0"),
    ({"sessions": [{"event_sequence": []}]}, ["body", "sessions", 0, "event_sequence"],
     "at least 1"),
    ({"sessions": [{"service_name": "x"}]}, ["body", "sessions", 0, "event_sequence"],
     "Field required"),
    ({"sessions": [{"event_sequence": [1], "has_error": "yes"}]},
     ["body", "sessions", 0, "has_error"], "valid boolean"),
    ({"session": []}, ["body", "sessions"], "Field required"),
    ({"sessions": [], "path": "/etc/passwd"}, ["body", "path"], "Extra inputs"),
])
def test_bad_bodies_are_422_with_the_field(runs, models, body, loc, fragment):
    with server_for(runs, models) as client:
        answer = client.post("/v1/score", json=body)
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert any(e["loc"] == loc and fragment in e["msg"] for e in errors), errors
    assert all("input" not in e for e in errors)          # the body is not echoed back


def test_invalid_json_and_empty_batch(runs, models):
    with server_for(runs, models) as client:
        broken = client.post("/v1/score", content=b'{"sessions": [',
                             headers={"content-type": "application/json"})
        empty = client.post("/v1/score", json={"sessions": []})
        untyped = client.post("/v1/score", content=b'{"sessions": []}')
    assert broken.status_code == 422 and broken.json()["detail"][0]["type"] == "json_invalid"
    assert untyped.status_code == 422
    assert "Content-Type: application/json" in untyped.json()["detail"][0]["msg"]
    assert empty.status_code == 200 and empty.json()["results"] == []


def test_limits_answer_413_naming_the_limit(runs, models):
    limits = {"max_sessions_per_request": 5, "max_events": 100, "max_body_bytes": 3000}
    with server_for(runs, models, **limits) as client:
        too_many = client.post("/v1/score", json={"sessions": [{"event_sequence": [1]}] * 6})
        too_long = client.post("/v1/score", json={"sessions": [
            {"event_sequence": [1]}, {"event_sequence": [1]}, {"event_sequence": [1] * 101}]})
        big = {"sessions": [{"event_sequence": [123456] * 100}] * 5}
        too_big = client.post("/v1/score", json=big)

        def chunks():                     # no Content-Length: counted while reading
            data = json.dumps(big).encode()
            for i in range(0, len(data), 1000):
                yield data[i:i + 1000]
        chunked = client.post("/v1/score", content=chunks(),
                              headers={"content-type": "application/json"})
        fine = client.post("/v1/score", json={"sessions": [{"event_sequence": [1] * 100}] * 5})
    assert too_many.status_code == 413
    assert "6 sessions" in too_many.json()["detail"] and "limit is 5" in too_many.json()["detail"]
    assert too_long.status_code == 413
    assert "session 2 has 101 events" in too_long.json()["detail"]
    assert "limit is 100" in too_long.json()["detail"]
    for answer in (too_big, chunked):
        assert answer.status_code == 413
        assert "limit of 3000 bytes" in answer.json()["detail"]
    assert fine.status_code == 200


# -- auth --------------------------------------------------------------------------------
def test_bearer_token_guards_everything_but_health(runs, models):
    with server_for(runs, models, token="s3cret") as client:
        body = {"sessions": [{"event_sequence": [1, 2]}]}
        for method, path in (("post", "/v1/score"), ("get", "/v1/models"), ("get", "/metrics")):
            kwargs = {"json": body} if method == "post" else {}
            missing = getattr(client, method)(path, **kwargs)
            assert missing.status_code == 401, path
            assert missing.headers["www-authenticate"].startswith("Bearer")
            wrong = getattr(client, method)(path, headers={"Authorization": "Bearer nope"},
                                            **kwargs)
            assert wrong.status_code == 401
            right = getattr(client, method)(path, headers={"Authorization": "Bearer s3cret"},
                                            **kwargs)
            assert right.status_code == 200, path
        assert client.get("/v1/health").json() == {"status": "ready"}
        schema = client.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_without_token_no_auth_is_asked(runs, models):
    with server_for(runs, models) as client:
        assert client.post("/v1/score", json={"sessions": [{"event_sequence": [1]}]}
                           ).status_code == 200
        assert client.get("/v1/models").json()["auth"] is False


# -- health, models, metrics -------------------------------------------------------------
def test_health_is_503_until_models_load_and_after_a_failed_load(runs, models):
    release = threading.Event()

    def slow():
        release.wait(30)
        return models["single"]
    settings = ServeSettings(run_dir=runs["single"])
    with serving(create_app(settings, loader=slow)) as url, httpx.Client(base_url=url) as client:
        loading = client.get("/v1/health")
        early = client.post("/v1/score", json={"sessions": [{"event_sequence": [1]}]})
        release.set()
        wait_ready(client)
    assert loading.status_code == 503 and loading.json()["status"] == "loading"
    assert early.status_code == 503 and "loading" in early.json()["detail"]

    failures = []

    def broken():
        raise RuntimeError("checkpoint unreadable")
    app = create_app(settings, loader=broken, on_load_error=failures.append)
    with serving(app) as url, httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.02)
        failed = client.get("/v1/health")
    assert failed.status_code == 503 and failed.json()["status"] == "failed"
    assert "checkpoint unreadable" in failed.json()["detail"]


def test_models_describes_the_ensemble(runs, models):
    with server_for(runs, models, "ensemble") as client:
        info = client.get("/v1/models").json()
    state = json.loads((runs["ensemble"] / "ensemble.json").read_text())
    assert info["kind"] == "ensemble"
    assert info["model"] == f"ensemble:{state['method']}(logbert, deeplog)"
    assert [d["name"] for d in info["detectors"]] == ["logbert", "deeplog"]
    for detector in info["detectors"]:
        assert detector["version"] and detector["plugin"] == detector["name"]
        assert isinstance(detector["threshold"], float)
        assert detector["checkpoint"] == f"{detector['name']}/best_model.pt"
        files = [f["name"] for f in detector["training_data"]["files"]]
        assert files == ["preprocessed_logs_2025-02-24.json", "preprocessed_logs_2025-02-25.json"]
        training = detector["training_data"]
        assert 0 < training["calibration_sessions"] < training["sessions"] <= 300
        assert training["windows"] >= training["sessions"]
    assert info["ensemble"]["method"] == state["method"]
    assert info["ensemble"]["severity"]["scorer"] == "service_weighted"
    assert info["calibration"]["method"] == "percentile"
    assert info["vocab_size"] > 5 and info["device"] == "cpu"
    assert info["validation"]["sessions"] == 150
    assert info["limits"]["max_sessions_per_request"] == 1000
    assert str(runs["root"]) not in json.dumps(info)      # no server paths


PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$')


def test_metrics_are_prometheus_text(runs, models):
    with server_for(runs, models, "ensemble") as client:
        sessions = day_sessions(runs, 30) + [long_session()]
        scored = client.post("/v1/score", json={"sessions": sessions}).json()
        client.post("/v1/score", json={"sessions": [{"event_sequence": []}]})
        client.get("/nowhere")
        answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    for line in text.splitlines():
        match = PROM_LINE.match(line)
        assert line.startswith("# ") or (match and float(match.group(3)) >= 0), line
    assert 'radar_requests_total{endpoint="/v1/score",status="200"} 1' in text
    assert 'radar_requests_total{endpoint="/v1/score",status="422"} 1' in text
    assert 'radar_requests_total{endpoint="other",status="404"} 1' in text
    assert "radar_sessions_scored_total 31" in text
    by_severity: dict[str, int] = {}
    for record in scored["results"]:
        if record["is_anomaly"]:
            by_severity[record["severity"]] = by_severity.get(record["severity"], 0) + 1
    for severity, count in by_severity.items():
        assert f'radar_anomalies_total{{severity="{severity}"}} {count}' in text
    assert sum(by_severity.values()) == scored["n_anomalies"]
    assert 'radar_request_seconds_bucket{endpoint="/v1/score",le="+Inf"} 2' in text
    assert "# TYPE radar_batch_sessions histogram" in text
    assert "radar_batch_sessions_count 1" in text        # the warm-up is not counted
    assert "radar_model_ready 1" in text


# -- micro-batching ----------------------------------------------------------------------
def test_micro_batcher_merges_concurrent_requests_and_bounds_the_queue():
    calls = []
    gate = threading.Event()

    def score(groups):
        calls.append([len(g) for g in groups])
        if len(calls) == 1:
            gate.wait(5)                   # hold the model busy while others queue up
        return [[f"r{x}" for x in g] for g in groups]

    async def go():
        batcher = MicroBatcher(score, max_batch_sessions=6, wait_s=0.0, max_queued_sessions=9)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit(list(range(n)))) for n in (2, 3, 1, 3)]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match="limit 9"):
            await batcher.submit([1])
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    results = asyncio.run(go())
    assert results[0] == ["r0"] and results[2] == ["r0", "r1", "r2"]
    assert calls == [[1], [2, 3, 1], [3]]            # whole requests, at most 6 sessions


def test_a_large_request_is_scored_in_chunks_and_a_small_one_waits_for_one_chunk():
    calls = []

    def score(groups):
        calls.append([len(g) for g in groups])
        return [[f"r{x}" for x in g] for g in groups]

    async def go():
        batcher = MicroBatcher(score, max_batch_sessions=4, wait_s=0.0, max_queued_sessions=99)
        batcher.start()
        big = asyncio.ensure_future(batcher.submit(list(range(10))))
        small = asyncio.ensure_future(batcher.submit([7]))
        results = await asyncio.gather(big, small)
        await batcher.stop()
        return results

    big, small = asyncio.run(go())
    assert big == [f"r{x}" for x in range(10)] and small == ["r7"]
    assert calls == [[4], [1], [4], [2]]


def test_a_cancelled_request_leaves_the_queue_unscored():
    calls = []
    gate = threading.Event()

    def score(groups):
        calls.append([len(g) for g in groups])
        gate.wait(5)
        return [[0] * len(g) for g in groups]

    async def go():
        batcher = MicroBatcher(score, max_batch_sessions=4, wait_s=0.0, max_queued_sessions=99)
        batcher.start()
        busy = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(batcher.submit(list(range(9))))
        await asyncio.sleep(0.05)
        assert batcher.queued_sessions == 9
        waiting.cancel()
        await asyncio.sleep(0.05)
        queued = batcher.queued_sessions
        gate.set()
        await busy
        await asyncio.sleep(0.05)
        await batcher.stop()
        return queued

    assert asyncio.run(go()) == 0
    assert calls == [[1]]


class SlowModel:
    """A stand-in model: ``per_session`` seconds of work per session, counted."""

    name, device, loaded, info = "slow", "cpu", {"slow": None}, {}

    def __init__(self, per_session: float = 0.0):
        self.per_session, self.scored = per_session, 0

    def warm_up(self) -> None:
        pass

    def score(self, groups):
        n = sum(map(len, groups))
        time.sleep(n * self.per_session)
        self.scored += n
        return [[{"is_anomaly": False, "anomaly_score": 0.0} for _ in g] for g in groups]


@contextlib.contextmanager
def slow_server(tmp_path, model, **settings):
    app = create_app(ServeSettings(run_dir=tmp_path, **settings), loader=lambda: model)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        wait_ready(client)
        yield url, client


def test_work_of_clients_that_left_is_not_done(tmp_path):
    """Three heavy requests (1 s of model time each) whose clients give up after 0.3 s:
    their queued work is dropped, so the next small request waits for one chunk."""
    model = SlowModel(per_session=0.0025)
    heavy = {"sessions": [{"event_sequence": [1, 2, 3]}] * 400}
    with slow_server(tmp_path, model, max_batch_sessions=50) as (url, client):
        def abandon():
            with httpx.Client(base_url=url, timeout=0.3) as impatient, \
                    contextlib.suppress(httpx.TimeoutException):
                impatient.post("/v1/score", json=heavy)

        threads = [threading.Thread(target=abandon) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        start = time.perf_counter()
        small = client.post("/v1/score", json={"sessions": [{"event_sequence": [1]}]})
        waited = time.perf_counter() - start
        metrics = client.get("/metrics").text
    assert small.status_code == 200 and waited < 1.0, waited     # was ~2.7 s
    assert model.scored < 400, model.scored                       # of 1200 asked for
    assert 'radar_requests_total{endpoint="/v1/score",status="499"} 3' in metrics


def test_without_the_token_nothing_of_the_body_is_read(tmp_path):
    """401 before the body is parsed: a malformed or oversized body from a client
    without the token is not a 422 or 413, which would tell it the route is open."""
    with slow_server(tmp_path, SlowModel(), token="s3cret", max_body_bytes=1000) as (_, client):
        for body in (b"{not json", b'{"sessions": []}' + b" " * 5000):
            answer = client.post("/v1/score", content=body,
                                 headers={"Content-Type": "application/json"})
            assert answer.status_code == 401, answer.text
            assert answer.headers["www-authenticate"] == 'Bearer realm="radar"'
            assert answer.json()["detail"].startswith("missing or wrong bearer token")
        assert client.get("/v1/models", headers={"Authorization": "bearer s3cret"}
                          ).status_code == 200                  # the scheme is case-blind
        malformed = client.post("/v1/score", content=b"{not json",
                                headers={"Content-Type": "application/json",
                                         "Authorization": "Bearer s3cret"})
        assert malformed.status_code == 422


def test_a_body_that_is_not_utf8_is_a_422_like_other_bad_json(tmp_path):
    with slow_server(tmp_path, SlowModel()) as (_, client):
        answer = client.post("/v1/score", content=b'{"sessions": [{"service_name": "\xff"}]}',
                             headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body"] and "not valid UTF-8 text (byte 32)" in error["msg"]


# -- slow and vanishing clients (#25) ----------------------------------------------------
def raw_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_slow_sender_of_headers_gets_408_and_is_closed(tmp_path):
    """Headers sent one byte at a time were waited on forever; now they have
    --header-timeout in all, however they trickle in."""
    with slow_server(tmp_path, SlowModel(), header_timeout_s=0.5) as (url, client):
        sock = raw_connection(url)
        started = time.monotonic()
        with contextlib.suppress(OSError):
            for byte in b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
                sock.send(bytes([byte]))
                time.sleep(0.05)
        answer = read_answer(sock)
        sock.close()
        assert time.monotonic() - started < 2.5
        assert answer.startswith(b"HTTP/1.1 408 ") and b"--header-timeout" in answer
        assert client.get("/v1/health").status_code == 200       # others are served


def test_a_body_shorter_than_its_content_length_gets_408(tmp_path):
    with slow_server(tmp_path, SlowModel(), body_timeout_s=0.5) as (url, client):
        sock = raw_connection(url)
        started = time.monotonic()
        sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\n\r\n{\"sessions\": [")
        answer = read_answer(sock)
        sock.close()
        assert time.monotonic() - started < 2.5
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["detail"].startswith(
            "the request body took over 0.5 s to arrive (--body-timeout)")
        metrics = client.get("/metrics").text
    assert 'radar_requests_total{endpoint="/v1/score",status="408"} 1' in metrics


def test_a_client_that_leaves_mid_body_is_not_a_500(tmp_path):
    """It was counted as a 500: unauthenticated clients could inflate the 5xx rate."""
    with slow_server(tmp_path, SlowModel()) as (url, client):
        for _ in range(3):
            sock = raw_connection(url)
            sock.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 100\r\n\r\n{\"sess")
            time.sleep(0.1)
            sock.close()
        time.sleep(0.3)
        metrics = client.get("/metrics").text
    assert 'status="500"' not in metrics
    assert 'radar_requests_total{endpoint="/v1/score",status="499"} 3' in metrics


def test_past_the_connection_cap_the_slowest_header_sender_makes_room(tmp_path):
    with slow_server(tmp_path, SlowModel(), max_connections=4) as (url, _):
        idle = [raw_connection(url) for _ in range(6)]
        for sock in idle:
            sock.send(b"GET /v1/heal")          # headers begun, never finished
        time.sleep(0.2)
        started = time.monotonic()
        with httpx.Client(base_url=url, timeout=5) as fresh:
            assert fresh.get("/v1/health").status_code == 200
        assert time.monotonic() - started < 1.0
        closed = 0
        for sock in idle:
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError, socket.timeout):
                closed += read_answer(sock).startswith(b"HTTP/1.1 503 ")
            sock.close()
        assert closed >= 3                      # the cap held: 4 open, the rest made room


def test_a_lone_surrogate_in_a_string_is_a_422_naming_the_field(tmp_path):
    """"\\ud800" in service_name gave a text/plain 500 (UnicodeEncodeError)."""
    with slow_server(tmp_path, SlowModel()) as (_, client):
        for field in ("service_name", "session_key"):
            body = '{"sessions": [{"event_sequence": [1], "FIELD": "a\\ud800"}]}'.replace(
                "FIELD", field)
            answer = client.post("/v1/score", content=body.encode(),
                                 headers={"Content-Type": "application/json"})
            assert answer.status_code == 422, answer.text
            (error,) = answer.json()["detail"]
            assert error["loc"] == ["body", "sessions", 0, field]
            assert "lone surrogate (U+D800) at character 1" in error["msg"]


def test_repeated_log_lines_are_rate_limited():
    import logging

    limiter = RepeatFilter(burst=3, window_s=0.3)
    records = [logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1,
                                 "Invalid HTTP request received.", None, None)
               for _ in range(1000)]
    assert sum(limiter.filter(record) for record in records) == 3
    other = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, "another %s",
                              ("x",), None)
    assert limiter.filter(other)
    time.sleep(0.35)
    later = logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1,
                              "Invalid HTTP request received.", None, None)
    assert limiter.filter(later)
    assert later.getMessage().endswith("[and 997 more like this in the last 0.3 s, not logged]")
    config = log_config("info")         # what radar serve logs with: all but the access log
    assert config["handlers"]["default"]["filters"] == ["repeats"]
    assert "filters" not in config["handlers"]["access"]
    assert config["root"]["handlers"] == ["default"]            # asyncio's accept errors


# -- the command -------------------------------------------------------------------------
def test_serve_without_a_trained_run_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--run", str(tmp_path)])
    assert result.exit_code == 1
    assert f"--run {tmp_path}: no trained model there" in result.output
    assert "radar run" in result.output and "Traceback" not in result.output


def test_a_model_that_fails_to_load_stops_the_server_with_one_line(tmp_path):
    (tmp_path / "config.yaml").write_text("detectors: [logbert]\n")
    (tmp_path / "best_model.pt").write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(cli, ["serve", "--run", str(tmp_path), "--port", "0",
                                      "--log-level", "critical"])
    assert result.exit_code == 1
    assert f"could not load {tmp_path}: checkpoint" in result.output
    assert "cannot be read" in result.output and "Traceback" not in result.output


def test_serve_needs_the_extra_and_a_non_empty_token(runs, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(cli, ["serve", "--run", str(runs["single"])])
    assert result.exit_code == 1
    assert "radar serve needs the serve extra: pip install 'radar-logs[serve]'" in result.output
    monkeypatch.setitem(sys.modules, "uvicorn", uvicorn)
    monkeypatch.setenv("MY_TOKEN", " ")
    result = CliRunner().invoke(cli, ["serve", "--run", str(runs["single"]),
                                      "--token-env", "MY_TOKEN"])
    assert result.exit_code == 1 and "MY_TOKEN is set but empty" in result.output


def test_non_loopback_host_without_token_warns(runs, monkeypatch, capsys):
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)  # never binds
    monkeypatch.delenv("RADAR_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--run", str(runs["single"]),
                                      "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "serving on 0.0.0.0 without a token" in result.output + capsys.readouterr().err
    result = CliRunner().invoke(cli, ["serve", "--run", str(runs["single"])])
    assert result.exit_code == 0, result.output
    assert "without a token" not in result.output + capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_radar_serve_command_end_to_end(runs):
    port = free_port()
    env = {**os.environ, "RADAR_API_TOKEN": "tok"}
    proc = subprocess.Popen([sys.executable, "-m", "radar.cli", "serve", "--run",
                             str(runs["ensemble"]), "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "radar serve never became ready"
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/v1/health").status_code == 200:
                        break
                time.sleep(0.2)
            body = {"sessions": day_sessions(runs, 3)}
            assert client.post("/v1/score", json=body).status_code == 401
            answer = client.post("/v1/score", json=body, headers={"Authorization": "Bearer tok"})
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert answer.status_code == 200 and len(answer.json()["results"]) == 3
    assert "token required (RADAR_API_TOKEN)" in output and "ready: ensemble:" in output
    assert "Traceback" not in output
