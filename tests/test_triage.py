"""The triage page's data: the Parquet store, groups, the verdict file, and the API.

Fast and tiny: a hand-written run folder (60 sessions, 20 flagged, two days), no model.
The browser drives the same run in tests/test_triage_browser.py.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

from radar.data.labels import read_labels
from radar.serve.app import ServeSettings, create_app
from radar.serve.triage import COOKIE, cookie_value
from radar.triage import store as triage_store
from radar.triage.groups import group_keys
from radar.triage.store import Filters, TriageStore, ensure_store, is_current, write_store
from radar.triage.verdicts import effect, read_verdicts, record_verdicts, verdicts_path

DAY = "preprocessed_logs_2026-01-15.json"
DAY2 = "preprocessed_logs_2026-01-16.json"
N = 60
XSS = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
XSS_SESSION = 7
LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


def flagged(i: int) -> bool:
    return i % 3 == 1            # 1, 4, 7, ... 58: 20 sessions


def day_of(i: int) -> str:
    return DAY if i < 40 else DAY2


def lines_of(i: int) -> list[str]:
    lines = [f"2026-01-15 10:00:0{j} INFO [svc] step {j} of session {i}" for j in range(6)]
    if i == XSS_SESSION:
        lines[2] = XSS
    return lines


def record(i: int) -> dict:
    is_flagged = flagged(i)
    event = 5 if i % 2 == 0 else 9
    item = {"position": 2, "event_id": event, "kind": "event", "rank": 40,
            "probability": 0.0012}
    if event == 5:
        item["source"] = {"file": "svc.py", "line": 10, "function": "handle", "class": None,
                          "level": "info", "statement": "log.info('step %s', j)",
                          "template": "step <*> of session <*>", "score": 0.9,
                          "code": [{"line": 9, "text": "def handle(j):", "focus": False},
                                   {"line": 10, "text": "    log.info('step %s', j)",
                                    "focus": True}]}
    second = {"position": 4, "event_id": 3, "kind": "event", "rank": 12, "probability": 0.02}
    return {"file": day_of(i), "session_id": i, "session_key": f"req-{i}",
            "service_name": "gateway" if i % 4 < 2 else "billing",
            "anomaly_score": float(i) / 10, "is_anomaly": is_flagged, "threshold": 0.05,
            "has_error": i % 5 == 0, "has_warn": False, "length": 6,
            "top_positions": [item, second],
            "detectors": {"deeplog": {"score": i * 1.0, "normalized": 1.0,
                                      "flagged": is_flagged},
                          "pca": {"score": i * 2.0, "normalized": 0.5,
                                  "flagged": is_flagged and i % 2 == 0}},
            "explained_by": "deeplog",
            "severity": LEVELS[i % 4] if is_flagged else "NORMAL",
            "severity_reasons": [f"score {i / 10} is above the threshold"] if is_flagged else []}


def write_day_file(path: Path, ids: list[int]) -> None:
    sessions = []
    for i in ids:
        events = [1, 2, 5 if i % 2 == 0 else 9, 2, 3, 4]
        tokens = [101, *events, 102]
        sessions.append({"session_id": i, "event_sequence": events, "token_ids": tokens,
                         "attention_mask": [1] * len(tokens), "has_error": i % 5 == 0,
                         "has_warn": False,
                         "service_name": "gateway" if i % 4 < 2 else "billing",
                         "original_logs": lines_of(i)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sessions))


def write_results(path: Path, records: list[dict]) -> None:
    """One record per line in a JSON array, as RADAR writes it."""
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")


def make_run(root: Path) -> Path:
    data = root / "data"
    write_day_file(data / DAY, [i for i in range(N) if day_of(i) == DAY])
    write_day_file(data / DAY2, [i for i in range(N) if day_of(i) == DAY2])
    (data / "templates.tsv").write_text("event_id\tservice\ttemplate\n"
                                        "9\tgateway\tRetry <*> of the upstream call\n")
    run = root / "run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"detectors": ["deeplog", "pca"], "data": {"preprocessed_dir": str(data)}}))
    (run / "ensemble.json").write_text(json.dumps(
        {"scorer": {"detectors": ["deeplog", "pca"], "thresholds": [6.5, 5900.0]}}))
    write_results(run / "anomaly_results.json", [record(i) for i in range(N)])
    return run


# ---------------------------------------------------------------------- fixtures

@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path)


class NoModel:
    """The scoring side is not under test here: a model that loads at once."""

    name, device, loaded, info = "none", "cpu", {}, {}

    def warm_up(self):
        pass

    def score(self, sessions):
        return []


def client_for(run_dir, token=None):
    app = create_app(ServeSettings(run_dir=run_dir, token=token), loader=NoModel)
    return TestClient(app, raise_server_exceptions=False)


def get_ready(client, url, **kwargs):
    """GET, waiting out the 503 of the store being built."""
    for _ in range(200):
        answer = client.get(url, **kwargs)
        if answer.status_code != 503:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"{url} stayed 503")


# ---------------------------------------------------------------------- store

def test_store_has_a_row_per_record_and_the_filter_columns(run):
    path = write_store(run)
    table = pq.read_table(path)
    assert table.num_rows == N
    assert set(triage_store.LIST_COLUMNS) <= set(table.column_names)
    rows = {row["session_id"]: row for row in table.to_pylist()}
    assert sum(row["flagged"] for row in rows.values()) == 20
    row = rows[4]
    assert (row["day"], row["service"], row["severity"], row["severity_rank"]) == (
        "2026-01-15", "gateway", "LOW", 1)
    assert row["agreement"] == 2 and row["n_detectors"] == 2
    assert [m["name"] for m in row["members"]] == ["deeplog", "pca"]
    assert row["group_event"] == "stmt:svc.py:10" and row["top_event_id"] == 5
    assert json.loads(row["top"])[0]["source"]["line"] == 10
    assert json.loads(rows[3]["top"])[0]["event_id"] == 9    # unflagged ones keep theirs
    assert rows[41]["day"] == "2026-01-16"


def test_store_is_streamed_in_row_groups_and_rebuilt_when_results_change(run, monkeypatch):
    monkeypatch.setattr(triage_store, "ROW_GROUP", 7)
    path = write_store(run)
    assert pq.ParquetFile(path).num_row_groups == -(-N // 7)
    assert is_current(run)
    results = run / "anomaly_results.json"
    write_results(results, [record(i) for i in range(N - 1)])
    os.utime(results, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not is_current(run)
    assert pq.read_table(ensure_store(run)).num_rows == N - 1
    assert is_current(run)
    assert not list(run.glob(".triage.parquet.*"))      # no temporary file left behind


def test_store_of_a_damaged_results_file_names_the_file(run):
    (run / "anomaly_results.json").write_text('[\n{"file": "x"}\n]\n')
    with pytest.raises(Exception, match="anomaly_results.json"):
        write_store(run)
    assert not (run / "triage.parquet").exists()


def test_pages_rank_by_severity_then_score_and_filter(run):
    store = TriageStore(write_store(run))
    page = store.page(Filters(), limit=5)
    assert page["total"] == 20
    ranks = [(s["severity_rank"], s["score"]) for s in page["sessions"]]
    assert ranks == sorted(ranks, reverse=True)
    assert page["sessions"][0]["severity"] == "CRITICAL"
    everything = [s["session_id"] for s in store.page(Filters(), limit=500)["sessions"]]
    assert everything[:5] == [s["session_id"] for s in page["sessions"]]
    assert store.page(Filters(), offset=5, limit=5)["sessions"][0]["session_id"] == everything[5]
    billing = store.page(Filters(services=("billing",)), limit=100)
    assert billing["total"] == 10 and {s["service"] for s in billing["sessions"]} == {"billing"}
    assert store.page(Filters(days=("2026-01-16",)), limit=100)["total"] == 7
    high = store.page(Filters(severities=("HIGH", "CRITICAL")), limit=100)
    assert {s["severity"] for s in high["sessions"]} == {"HIGH", "CRITICAL"}
    assert store.page(Filters(min_agreement=2), limit=100)["total"] == 10
    missed = store.page(Filters(flagged="no"), limit=3)      # where the misses would be
    assert missed["total"] == 40
    assert [s["session_id"] for s in missed["sessions"]] == [59, 57, 56]
    assert store.page(Filters(flagged="any"), limit=1)["total"] == N
    facets = store.facets()
    assert facets["flagged"] == 20 and facets["n_detectors"] == 2
    assert [item["value"] for item in facets["severity"]] == ["CRITICAL", "HIGH", "MEDIUM",
                                                              "LOW"]


def test_groups_by_event_and_by_path(run):
    store = TriageStore(write_store(run))
    groups = store.groups(Filters(), limit=10)
    assert groups["sessions"] == 20
    by_key = {g["key"]: g for g in groups["groups"]}
    assert by_key["stmt:svc.py:10"]["size"] == 10 and by_key["event:9"]["size"] == 10
    assert "svc.py:10" in by_key["stmt:svc.py:10"]["label"]
    assert by_key["event:9"]["label"] == "Retry <*> of the upstream call"
    members = store.group_sessions(Filters(group="event:9"))
    assert len(members) == 10 and all(sid % 2 for _, sid in members)
    by_path = store.groups(Filters(group_by="path"), limit=10)
    assert {g["key"] for g in by_path["groups"]} == {"stmt:svc.py:10+event:3",
                                                     "event:9+event:3"}
    narrowed = store.groups(Filters(services=("billing",)), limit=10)
    assert narrowed["sessions"] == 10


def test_group_keys_without_explanation_or_source():
    assert group_keys({"service_name": "a", "top_positions": []})[0] == "score-only@a"
    unseen = {"service_name": "a", "top_positions": [{"kind": "unseen", "event_id": None}]}
    assert group_keys(unseen)[0] == "unseen@a"
    event, _, label = group_keys({"service_name": "a", "top_positions": [
        {"kind": "event", "event_id": 12}]}, {"12": "Payment <*> failed"})
    assert event == "event:12" and label == "Payment <*> failed"


# ---------------------------------------------------------------------- verdicts

def test_verdicts_are_a_label_file_radar_run_reads(run):
    record_verdicts(run, [(DAY, 1), (DAY, 4)], "anomaly", who="ana")
    record_verdicts(run, [(DAY, 7)], "normal", who="bo", group="event:9")
    record_verdicts(run, [(DAY, 10)], "unsure", who="cy")
    path = verdicts_path(run)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["file", "session_id", "label", "verdict", "who", "when", "group"]
    assert rows[1][:5] == [DAY, "1", "1", "anomaly", "ana"] and rows[1][5].endswith("Z")
    table = read_labels(path)
    assert table.by_file_session == {(DAY, 1): 1, (DAY, 4): 1, (DAY, 7): 0}
    assert table.unreviewed == 1                 # "not sure" is a blank label
    record_verdicts(run, [(DAY, 1)], "normal", who="ana")        # changed mind
    record_verdicts(run, [(DAY, 10)], "clear")                   # taken back
    verdicts = read_verdicts(path)
    assert verdicts[(DAY, 1)].verdict == "normal" and (DAY, 10) not in verdicts
    assert read_verdicts(path)[(DAY, 7)].group == "event:9"


def test_two_browsers_at_once_keep_each_others_verdicts(run):
    errors = []

    def browser(start):
        try:
            for i in range(start, 40, 4):
                record_verdicts(run, [(DAY, i)], "anomaly" if i % 2 else "normal",
                                who=f"b{start}")
        except Exception as exc:     # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=browser, args=(start,)) for start in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert set(read_verdicts(verdicts_path(run))) == {(DAY, i) for i in range(40)}


def test_old_review_csv_and_damaged_files(run):
    path = verdicts_path(run)
    path.write_text("file,session_id,label,session_key\n" + f"{DAY},1,1,req-1\n{DAY},4,,x\n")
    verdicts = read_verdicts(path)
    assert verdicts[(DAY, 1)].verdict == "anomaly" and verdicts[(DAY, 4)].verdict == "unsure"
    record_verdicts(run, [(DAY, 7)], "normal")
    assert read_labels(path).by_file_session == {(DAY, 1): 1, (DAY, 7): 0}
    path.write_text("BlockId,Label\nblk_1,Anomaly\n")
    with pytest.raises(Exception, match="not a label file"):
        read_verdicts(path)
    path.write_text(f"file,session_id,label\n{DAY},seven,1\n")
    with pytest.raises(Exception, match="not an integer"):
        read_verdicts(path)


def test_effect_counts_confirmed_and_false_alarms(run):
    verdicts = record_verdicts(run, [(DAY, 1), (DAY, 4)], "anomaly")
    verdicts = record_verdicts(run, [(DAY, 7), (DAY, 2)], "normal")
    verdicts = record_verdicts(run, [(DAY, 3)], "anomaly")
    flags = TriageStore(write_store(run)).flags_of(list(verdicts))
    out = effect(run, verdicts, flags)
    assert (out["confirmed"], out["false_alarms"], out["missed"], out["normal_agreed"]) == (
        2, 1, 1, 1)
    assert f"--labels {verdicts_path(run)}" in out["command"]
    assert "threshold_method=best_f1" in out["command"]


# ---------------------------------------------------------------------- API

def test_page_and_data_need_the_token(run):
    with client_for(run, token="s3cret") as client:
        page = client.get("/triage")
        assert page.status_code == 401 and "token" in page.text.lower()
        assert 'name="token"' in page.text                   # the login form
        for url in ("/triage/api/status", "/triage/api/sessions", "/triage/api/groups",
                    "/triage/api/session/1", "/triage/api/verdicts", "/triage/static/triage.js"):
            answer = client.get(url)
            assert answer.status_code == 401, url
            assert "token" in answer.json()["detail"]
        assert client.post("/triage/api/verdicts", json={
            "verdict": "anomaly", "sessions": [{"file": DAY, "session_id": 1}]}
            ).status_code == 401
        client.cookies.set(COOKIE, "0" * 64, path="/triage")          # a forged cookie
        assert client.get("/triage/api/status").status_code == 401
        client.cookies.clear()
        assert client.post("/triage/login", data={"token": "wrong"}).status_code == 401
        assert not verdicts_path(run).exists()


def test_login_cookie_opens_the_page_and_changes_need_the_header(run):
    with client_for(run, token="s3cret") as client:
        login = client.post("/triage/login", data={"token": "s3cret"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/triage"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
        assert client.cookies[COOKIE] == cookie_value("s3cret")
        page = client.get("/triage")
        assert page.status_code == 200 and "triage.js" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert get_ready(client, "/triage/api/status").json()["facets"]["flagged"] == 20
        body = {"verdict": "anomaly", "sessions": [{"file": DAY, "session_id": 1}]}
        assert client.post("/triage/api/verdicts", json=body).status_code == 403
        saved = client.post("/triage/api/verdicts", json=body,
                            headers={"X-Radar-Triage": "1"})
        assert saved.status_code == 200 and saved.json()["effect"]["confirmed"] == 1
    with client_for(run, token="s3cret") as client:         # a bearer client, no cookie
        answer = get_ready(client, "/triage/api/sessions",
                           headers={"Authorization": "Bearer s3cret"})
        assert answer.status_code == 200 and answer.json()["total"] == 20


def test_api_lists_filters_details_and_group_verdicts(run):
    with client_for(run) as client:
        status = get_ready(client, "/triage/api/status").json()
        assert status["sessions"] == N and status["detectors"] == ["deeplog", "pca"]
        page = client.get("/triage/api/sessions", params={"limit": 3}).json()
        assert page["total"] == 20 and len(page["sessions"]) == 3
        billing = client.get("/triage/api/sessions", params={
            "service": "billing", "severity": ["HIGH", "CRITICAL"], "limit": 100}).json()
        assert billing["total"] and all(s["service"] == "billing" for s in billing["sessions"])
        detail = client.get(f"/triage/api/session/{XSS_SESSION}").json()
        assert detail["lines"][2] == XSS and detail["lines_total"] == 6
        assert [m["threshold"] for m in detail["members"]] == [6.5, 5900.0]
        assert detail["top"][0]["position"] == 2
        assert detail["top"][0]["template"] == "Retry <*> of the upstream call"
        linked = client.get("/triage/api/session/4").json()
        assert linked["top"][0]["source"]["code"][1]["focus"] is True
        groups = client.get("/triage/api/groups").json()
        assert {g["key"]: g["size"] for g in groups["groups"]} == {"stmt:svc.py:10": 10,
                                                                    "event:9": 10}
        answer = client.post("/triage/api/verdicts", json={
            "verdict": "normal", "who": "=cmd", "group": {"key": "event:9", "by": "event",
                                                          "service": ["billing"]}})
        assert answer.status_code == 200 and answer.json()["saved"] == 5
        verdicts = read_verdicts(verdicts_path(run))
        assert len(verdicts) == 5 and {v.group for v in verdicts.values()} == {"event:9"}
        assert {v.who for v in verdicts.values()} == {"'=cmd"}       # never a formula
        after = client.get("/triage/api/groups").json()
        assert {g["key"]: g["verdicts"] for g in after["groups"]}["event:9"] == {"normal": 5}
        members = client.get("/triage/api/sessions", params={"group": "event:9"}).json()
        assert sum(1 for s in members["sessions"] if s["verdict"]) == 5
        assert client.get("/triage/api/verdicts").json()["false_alarms"] == 5
        unflagged = client.get("/triage/api/sessions", params={"flagged": "no"}).json()
        assert unflagged["total"] == 40 and unflagged["sessions"][0]["session_id"] == 59
        top = unflagged["sessions"][0]
        client.post("/triage/api/verdicts", json={
            "verdict": "anomaly", "sessions": [{"file": top["file"], "session_id": 59}]})
        assert client.get("/triage/api/verdicts").json()["missed"] == 1


def test_api_errors_are_json_with_a_message(run):
    with client_for(run) as client:
        get_ready(client, "/triage/api/status")
        assert client.get("/triage/api/session/999").json()["detail"].startswith("no session")
        bad = client.get("/triage/api/sessions", params={"severity": "SEVERE"})
        assert bad.status_code == 422
        assert client.get("/triage/api/sessions", params={"limit": 0}).status_code == 422
        empty = client.post("/triage/api/verdicts", json={"verdict": "anomaly"})
        assert empty.status_code == 422 and "name the sessions" in empty.json()["detail"]
        nobody = client.post("/triage/api/verdicts", json={
            "verdict": "anomaly", "group": {"key": "event:404"}})
        assert nobody.status_code == 404
        assert client.post("/triage/api/verdicts", json={
            "verdict": "maybe", "sessions": []}).status_code == 422
        stranger = client.post("/triage/api/verdicts", json={
            "verdict": "anomaly", "sessions": [{"file": DAY, "session_id": 1},
                                               {"file": DAY, "session_id": 4242}]})
        assert stranger.status_code == 404 and "4242" in stranger.json()["detail"]
        assert not verdicts_path(run).exists()            # nothing half-saved
        assert client.get("/triage/static/../triage.py").status_code == 404
        verdicts_path(run).write_text("BlockId,Label\n")
        damaged = client.get("/triage/api/verdicts")
        assert damaged.status_code == 500 and "verdicts.csv" in damaged.json()["detail"]


def test_a_run_without_results_says_so(tmp_path):
    run = make_run(tmp_path)
    (run / "anomaly_results.json").unlink()
    with client_for(run) as client:
        answer = client.get("/triage/api/status")
        assert answer.status_code == 404 and "radar run" in answer.json()["detail"]


def test_store_is_built_lazily_by_the_server(run):
    assert not (run / "triage.parquet").exists()
    with client_for(run) as client:
        first = client.get("/triage/api/sessions")
        assert first.status_code in (200, 503)
        if first.status_code == 503:
            assert first.headers["retry-after"] == "1"
        assert get_ready(client, "/triage/api/sessions").json()["total"] == 20
    assert is_current(run)


