"""The triage page: query speed at 100k flagged sessions, verdict efficiency, screenshots.

Three parts (docs/triage.md has the figures and the exact commands):

``speed``: a generated results file with FLAGGED flagged sessions among TOTAL records
(two detectors, severities, explanations with source links) is turned into
triage.parquet; then the first page, filters, group counts and one session's detail
are timed on the store and through the HTTP API (median of REPEAT, and cold: a
freshly opened store).

``verdicts``: how many verdicts it takes to reach F1 0.9. Generated days with a known
anomaly set; run 1 trains on the first days and reports on day N-1; a simulated
on-call person gives verdicts on run 1's triage page through its API: the flagged
sessions' groups from the top (each group gets the verdict most of its members deserve,
per the ground truth: one click), then the sessions run 1 did not flag, highest scores
first, one click each (where its misses are); then run 2 (one more day, so day N-1 is its held-out day) runs
with `--labels verdicts.csv --set detection.threshold_method=best_f1`, and its results
on day N are scored against the ground truth with `radar evaluate`. The baseline is
run 2 without verdicts, the ceiling run 2 with every label of days 1..N-1.

``screenshots``: each view of the page on a run, through headless Chromium, as PNGs.

    python benchmarks/triage.py speed --flagged 100000 --total 200000
    python benchmarks/triage.py verdicts --work /tmp/triage-verdicts
    python benchmarks/triage.py verdicts --work /tmp/triage-verdicts-deeplog \
        --detector deeplog --size demo
    python benchmarks/triage.py verdicts --work /tmp/triage-verdicts-logbert \
        --detector logbert --config configs/demo.yaml
    python benchmarks/triage.py screenshots --run /tmp/demo1/runs/demo --out docs/img
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from radar.demo import write_template_source
from radar.results import LEVELS

SERVICES = ("gateway", "auth", "billing", "research", "manager", "notification",
            "search", "storage")
DAY = "preprocessed_logs_2026-03-02.json"


# ----------------------------------------------------------------------------- speed

def fake_record(i: int, flagged: bool, rng: random.Random) -> dict:
    service = SERVICES[min(int(rng.expovariate(0.5)), len(SERVICES) - 1)]
    events = [min(int(rng.paretovariate(1.2)), 300) for _ in range(3)]
    top = []
    for rank, event in enumerate(events):
        item = {"position": rng.randrange(40), "event_id": event, "kind": "event",
                "rank": 10 + rank, "probability": rng.random() / 100}
        if event % 3:
            item["source"] = {"file": f"{service}/handler.py", "line": 10 + event,
                              "function": "handle", "class": None, "level": "info",
                              "statement": f"log.info('event {event} %s', x)",
                              "template": f"event {event} <*>", "score": 0.9}
            if flagged:
                item["source"]["code"] = [{"line": 9 + event + k, "text": f"line {k}",
                                           "focus": k == 1} for k in range(3)]
        top.append(item)
    score = rng.uniform(1.2, 6.0) if flagged else rng.uniform(0.0, 1.1)
    a, b = flagged and rng.random() < 0.7, flagged and rng.random() < 0.5
    return {"file": DAY, "session_id": i, "service_name": service, "anomaly_score": score,
            "is_anomaly": flagged, "threshold": 1.17, "has_error": rng.random() < 0.1,
            "has_warn": False, "length": 40, "top_positions": top,
            "detectors": {"deeplog": {"score": score * 3, "normalized": score, "flagged": a},
                          "pca": {"score": score * 90, "normalized": score / 2, "flagged": b}},
            "explained_by": "deeplog",
            "severity": LEVELS[1 + min(int(score - 1.2), 3)] if flagged else "NORMAL",
            "severity_reasons": ["score above the threshold"] if flagged else []}


def write_fake_run(run: Path, flagged: int, total: int, seed: int = 0) -> None:
    import yaml

    rng = random.Random(seed)
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"detectors": ["deeplog", "pca"],
                                                     "data": {}}))
    every = total / flagged
    with (run / "anomaly_results.json").open("w") as handle:
        handle.write("[\n")
        for i in range(total):
            record = fake_record(i, int(i % every) == 0 and i // every < flagged, rng)
            handle.write(json.dumps(record) + (",\n" if i < total - 1 else "\n"))
        handle.write("]\n")


def timed(call, repeat: int) -> tuple[float, float]:
    """(first call, median of the next ``repeat``) in milliseconds."""
    start = time.perf_counter()
    call()
    first = (time.perf_counter() - start) * 1000
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(times)


def speed(args) -> dict:
    from fastapi.testclient import TestClient

    from radar.serve.app import ServeSettings, create_app
    from radar.triage.store import Filters, TriageStore, write_store

    run = Path(args.out)
    results = run / "anomaly_results.json"
    if not results.is_file() or args.regenerate:
        start = time.perf_counter()
        write_fake_run(run, args.flagged, args.total)
        print(f"generated {args.total} records ({args.flagged} flagged) in "
              f"{time.perf_counter() - start:.1f} s: {results.stat().st_size / 1e6:.0f} MB")
    start = time.perf_counter()
    path = write_store(run)
    build = time.perf_counter() - start
    out = {"records": args.total, "flagged": args.flagged,
           "results_mb": round(results.stat().st_size / 1e6, 1),
           "store_mb": round(path.stat().st_size / 1e6, 1), "build_s": round(build, 1),
           "build_records_per_s": round(args.total / build)}
    cold = TriageStore(path)
    start = time.perf_counter()
    cold.page(Filters(), limit=50)
    out["first_page_cold_ms"] = round((time.perf_counter() - start) * 1000, 1)
    store = TriageStore(path)
    narrow = Filters(services=("billing",), severities=("HIGH", "CRITICAL"), min_agreement=2)
    cases = {
        "first_page": lambda: store.page(Filters(), limit=50),
        "page_200": lambda: store.page(Filters(), offset=10_000, limit=50),
        "filter_service_severity_agreement": lambda: store.page(narrow, limit=50),
        "filter_day": lambda: store.page(Filters(days=("2026-03-02",)), limit=50),
        "groups_by_event": lambda: store.groups(Filters(), limit=50),
        "groups_by_path": lambda: store.groups(Filters(group_by="path"), limit=50),
        "group_members": lambda: store.page(Filters(group="event:3"), limit=50),
        "facets": lambda: TriageStore(path).facets(),
        "session_detail": lambda: store.session(args.total // 2),
    }
    for name, call in cases.items():
        first, median = timed(call, args.repeat)
        out[f"{name}_ms"] = {"first": round(first, 1), "median": round(median, 1)}
    total = store.page(narrow, limit=1)["total"]
    out["filter_matches"] = total

    app = create_app(ServeSettings(run_dir=run), loader=_NoModel)
    with TestClient(app) as client:
        for name, url in (("http_first_page", "/triage/api/sessions?limit=50"),
                          ("http_filter", ("/triage/api/sessions?limit=50&service=billing"
                                           "&severity=HIGH&severity=CRITICAL&agreement=2")),
                          ("http_groups", "/triage/api/groups?limit=50")):
            def get(url=url):
                answer = client.get(url)
                assert answer.status_code == 200, answer.text
            first, median = timed(get, args.repeat)
            out[f"{name}_ms"] = {"first": round(first, 1), "median": round(median, 1)}
    return out


# ----------------------------------------------------------------------------- verdicts

def run_cmd(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("a") as handle:
        handle.write("$ " + shlex.join(command) + "\n")
        handle.flush()
        done = subprocess.run(command, check=False, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(command)}; see {log}")
    return time.perf_counter() - start


def link_days(source: Path, target: Path, names: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in [*names, "templates.tsv"]:
        link = target / name
        if not link.exists():
            link.symlink_to(source / name)


def truth(labels: Path) -> dict[tuple[str, int], int]:
    with labels.open(newline="") as handle:
        return {(row["file"], int(row["session_id"])): int(row["label"])
                for row in csv.DictReader(handle)}


def evaluate(radar: list[str], results: Path, labels: Path, log: Path) -> dict:
    command = [*radar, "evaluate", "--results", str(results), "--labels", str(labels),
               "--json"]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    with log.open("a") as handle:
        handle.write("$ " + shlex.join(command) + "\n" + done.stdout + done.stderr)
    if done.returncode:
        raise SystemExit(f"radar evaluate failed: {done.stderr.strip()[-500:]}")
    data = json.loads(done.stdout)
    overall = data.get("overall", data)
    return {key: overall.get(key) for key in ("precision", "recall", "f1", "n_flagged")
            if key in overall}


def verdicts(args) -> dict:
    from fastapi.testclient import TestClient

    from radar.serve.app import ServeSettings, create_app

    radar = shlex.split(args.radar)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    all_data = work / "all"
    if not (all_data / "labels.csv").is_file():
        run_cmd([*radar, "synth", str(all_data), "--days", str(args.days), "--sessions",
                 str(args.sessions), "--anomaly-rate", str(args.anomaly_rate), "--seed",
                 str(args.seed), "--max-seq-length", "128"], log)
    days = sorted(path.name for path in all_data.glob("preprocessed_logs_*.json"))
    labelled_day, report_day = days[-2], days[-1]
    known = truth(all_data / "labels.csv")
    link_days(all_data, work / "data1", days[:-1])
    link_days(all_data, work / "data2", days)
    write_template_source(all_data / "templates.tsv", work / "src")
    index = work / "source-index.jsonl"
    if not index.is_file():
        run_cmd([*radar, "source", "index", str(work / "src"), "--out", str(index)], log)
    if args.config:
        # A shipped config (e.g. configs/demo.yaml's LogBERT), trained on every session as
        # a real day file is: the verdicts, not the demo's labels.csv, take anomalies out.
        config, extra = Path(args.config).resolve(), ["--set", "data.train_filter=all"]
    else:
        config, extra = work / "tiny.yaml", []
        config.write_text(TINY_CONFIG.format(**SIZES[args.size]))
    detectors = [word for name in args.detector for word in ("--detector", name)]
    base = [*radar, "run", "--config", str(config), *detectors, "--source-index", str(index),
            "--set", f"data.cache_dir={work / 'cache'}", *extra]
    run1 = work / "run1"
    seconds = {}
    if not (run1 / "anomaly_results.json").is_file():
        seconds["run1"] = run_cmd([*base, "--data", str(work / "data1"), "--set",
                                   f"output_dir={run1}"], log)

    # The simulated person, through the page's API. Phase 1: the flagged sessions' groups
    # from the top, one click each (the verdict most members deserve). Phase 2: the
    # sessions the run did not flag, highest scores first, one click each (where its
    # misses are). Each action is the set of sessions it labelled.
    app = create_app(ServeSettings(run_dir=run1), loader=_NoModel)
    verdict_file = run1 / "verdicts.csv"
    verdict_file.unlink(missing_ok=True)
    steps, actions = [], []
    with TestClient(app) as client:
        for _ in range(200):
            answer = client.get("/triage/api/groups?limit=500&by=event")
            if answer.status_code != 503:
                break
            time.sleep(0.1)
        groups = answer.json()["groups"]
        flagged = answer.json()["sessions"]
        for group in groups:
            members = client.get("/triage/api/sessions", params={
                "group": group["key"], "by": "event", "limit": 500}).json()["sessions"]
            anomalous = sum(known.get((s["file"], s["session_id"]), 0) for s in members)
            verdict = "anomaly" if anomalous * 2 > len(members) else "normal"
            saved = client.post("/triage/api/verdicts", json={
                "verdict": verdict, "who": "benchmark",
                "group": {"key": group["key"], "by": "event"}})
            assert saved.status_code == 200, saved.text
            actions.append({(s["file"], s["session_id"]) for s in members})
            steps.append({"click": len(actions), "what": "flagged group",
                          "verdict": verdict, "sessions": group["size"],
                          "anomalies": anomalous})
        unflagged = client.get("/triage/api/sessions", params={
            "flagged": "no", "limit": max(args.unflagged, 1)}).json()["sessions"]
        for session in unflagged[:args.unflagged]:
            key = (session["file"], session["session_id"])
            verdict = "anomaly" if known.get(key) else "normal"
            saved = client.post("/triage/api/verdicts", json={
                "verdict": verdict, "who": "benchmark",
                "sessions": [{"file": key[0], "session_id": key[1]}]})
            assert saved.status_code == 200, saved.text
            actions.append({key})
            steps.append({"click": len(actions), "what": "unflagged session",
                          "verdict": verdict, "sessions": 1, "anomalies": known.get(key, 0)})
    rows = list(csv.DictReader(verdict_file.open(newline="")))
    snapshot_dir = work / "verdicts"
    snapshot_dir.mkdir(exist_ok=True)

    def snapshot(clicks: int) -> Path:
        """The verdict file as it stood after ``clicks`` actions."""
        keys = set().union(*actions[:clicks]) if clicks else set()
        path = snapshot_dir / f"verdicts-{clicks}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(rows[0].keys() if rows else ["file", "session_id", "label"])
            for row in rows:
                if (row["file"], int(row["session_id"])) in keys:
                    writer.writerow(row.values())
        return path

    # The ceiling: every ground-truth label of the training days.
    ceiling = snapshot_dir / "all-labels.csv"
    with ceiling.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "session_id", "label"])
        for (name, sid), label in sorted(known.items()):
            if name != report_day:
                writer.writerow([name, sid, label])

    clicks_tried = sorted({c for c in args.clicks if c <= len(groups)} | {len(groups)} | {
        len(groups) + n for n in args.unflagged_steps if n <= args.unflagged})
    outcomes = []
    report_truth = snapshot_dir / "truth-report-day.csv"
    with report_truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "session_id", "label"])
        for (name, sid), label in sorted(known.items()):
            if name == report_day:
                writer.writerow([name, sid, label])
    plan = [("no verdicts", None, 0)] + [
        (f"{c} clicks", snapshot(c), c) for c in clicks_tried] + [
        ("every label of days 1..N-1", ceiling, None)]
    for name, labels, clicks in plan:
        out_dir = work / ("run2-" + name.replace(" ", "-").replace(".", ""))
        command = [*base, "--data", str(work / "data2"), "--set", f"output_dir={out_dir}"]
        if labels is not None:
            command += ["--labels", str(labels), "--set", "detection.threshold_method=best_f1"]
        if not (out_dir / "anomaly_results.json").is_file():
            seconds[out_dir.name] = run_cmd(command, log)
        sessions = (sum(1 for _ in csv.reader(labels.open())) - 1) if labels else 0
        metrics = evaluate(radar, out_dir / "anomaly_results.json", report_truth, log)
        outcomes.append({"labels": name, "clicks": clicks, "sessions_labelled": sessions,
                         **metrics, "command": shlex.join(command)})
        print(json.dumps(outcomes[-1]))
    reached = [o for o in outcomes if o["clicks"] is not None and (o.get("f1") or 0) >= 0.9]
    run1_eval = evaluate(radar, run1 / "anomaly_results.json", all_data / "labels.csv", log)
    return {"days": days, "labelled_day": labelled_day, "report_day": report_day,
            "run1_flagged": flagged, "run1_groups": len(groups), "run1_on_its_day": run1_eval,
            "detectors": args.detector, "size": args.config or args.size,
            "steps": steps, "outcomes": outcomes,
            "clicks_to_f1_0.9": min((o["clicks"] for o in reached), default=None),
            "seconds": {k: round(v) for k, v in seconds.items()}}


class _NoModel:
    """The page needs no model; the scoring API beside it gets one that scores nothing."""

    name, device, loaded, info = "none", "cpu", {}, {}

    def warm_up(self):
        pass

    def score(self, sessions):
        return []


TINY_CONFIG = """\
# benchmarks/triage.py: trainings of under a minute on 2 CPU cores. `small`: DeepLog with
# 32 units and few steps; `demo`: configs/demo.yaml's DeepLog (64 units, 1 layer).
models:
  deeplog: {{window_size: 10, embedding_size: {units}, hidden_size: {units}, num_layers: 1}}
training:
  batch_size: 64
  learning_rate: 0.003
  num_epochs: {epochs}
  total_steps: {steps}
  warmup_ratio: 0.05
  min_lr: 0.00005
  log_interval: 100
  save_interval: {steps}
  num_workers: 0
  device: cpu
data:
  max_seq_length: 128
"""
SIZES = {"small": {"units": 32, "epochs": 2, "steps": 200},
         "demo": {"units": 64, "epochs": 20, "steps": 1700}}


# ----------------------------------------------------------------------------- screenshots

def screenshots(args) -> dict:
    import socket
    import threading

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from radar.serve.app import ServeSettings, create_app

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    token = "screenshot-token"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServeSettings(run_dir=Path(args.run), token=token), loader=_NoModel)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={args.size}",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    base = f"http://127.0.0.1:{port}/triage"
    written = []

    def ready(hash_):
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.body.dataset.ready") == hash_)

    def shot(name):
        path = out / f"triage-{name}.png"
        driver.save_screenshot(str(path))
        written.append(str(path))

    try:
        driver.get(base)
        shot("login")
        driver.find_element(By.NAME, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        ready("#list")
        driver.find_element(By.ID, "who").send_keys("on-call ana")
        shot("list")
        top = driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")[0]
        row = top.get_attribute("data-row")
        top.click()
        ready(f"#session/{row}")
        shot("detail")
        driver.get(base + "#groups")
        ready("#groups")
        first = driver.find_elements(By.CSS_SELECTOR, "#groups tbody tr")[0]
        first.find_element(By.CSS_SELECTOR, 'button[data-verdict="anomaly"]').click()
        WebDriverWait(driver, 30).until(
            lambda d: "marked anomaly" in d.find_element(By.ID, "message").text)
        shot("groups")
        driver.find_elements(By.CSS_SELECTOR, "#groups a.open-group")[0].click()
        WebDriverWait(driver, 30).until(
            lambda d: (d.execute_script("return document.body.dataset.ready") or "")
            .startswith("#group/"))
        shot("group")
        driver.get(base + "#verdicts")
        ready("#verdicts")
        shot("verdicts")
    finally:
        driver.quit()
        server.should_exit = True
        (Path(args.run) / "verdicts.csv").unlink(missing_ok=True)     # the demo click
    return {"written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="part", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--flagged", type=int, default=100_000)
    p.add_argument("--total", type=int, default=200_000)
    p.add_argument("--out", default="/tmp/triage-speed")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--regenerate", action="store_true")
    p = sub.add_parser("verdicts")
    p.add_argument("--work", default="/tmp/triage-verdicts")
    p.add_argument("--radar", default="radar", help="the radar command (shell words)")
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--sessions", type=int, default=1000)
    p.add_argument("--anomaly-rate", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--clicks", type=int, nargs="*", default=[1, 2, 4, 8, 16],
                   help="runs after this many group verdicts (and after all groups)")
    p.add_argument("--unflagged", type=int, default=40,
                   help="then this many unflagged sessions, highest scores first, one by one")
    p.add_argument("--unflagged-steps", type=int, nargs="*", default=[10, 20, 40],
                   help="runs after this many of those")
    p.add_argument("--detector", action="append", help="repeatable (default: deeplog, pca)")
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--config", help="a run config instead of the built-in --size one "
                   "(e.g. configs/demo.yaml with --detector logbert)")
    p = sub.add_parser("screenshots")
    p.add_argument("--run", required=True)
    p.add_argument("--out", default="docs/img")
    p.add_argument("--size", default="1400,900")
    p.add_argument("--chromium", default=os.environ.get("RADAR_CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--chromedriver", default=os.environ.get("RADAR_CHROMEDRIVER",
                                                            "/usr/bin/chromedriver"))
    args = parser.parse_args()
    if args.part == "verdicts" and not args.detector:
        args.detector = ["deeplog", "pca"]
    result = {"speed": speed, "verdicts": verdicts, "screenshots": screenshots}[args.part](args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
