"""`radar analyze` from a streamed digest: same numbers as the loaded columns, bounded memory."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radar.report.analyze import analyze
from radar.report.digest import ScoreReservoir, digest_results
from radar.results import load_results


def write_results(path, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        score = float(rng.gamma(2.0))
        records.append({"file": f"preprocessed_logs_2025-06-0{1 + i % 3}.json", "session_id": i,
                        "service_name": ["gateway", "auth", "search"][i % 3 if i % 7 else 0],
                        "anomaly_score": score,
                        "is_anomaly": score > 5, "has_error": i % 11 == 0,
                        "severity": ["LOW", "MEDIUM", "HIGH"][i % 3] if i % 5 else None,
                        "threshold": 5.0})
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    return records


def assert_close(ours, theirs) -> None:
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            assert_close(ours[key], theirs[key])
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs)
    else:
        assert ours == theirs


def test_digest_matches_the_loaded_columns(tmp_path):
    path = tmp_path / "r.json"
    records = write_results(path, 5000)
    streamed = analyze(digest_results(path, keep_top=5), top_n=5)
    loaded = analyze(load_results(path, keep_top=5), top_n=5)
    assert streamed.keys() == loaded.keys()
    scores = np.array([r["anomaly_score"] for r in records], dtype=float)
    finite = scores[np.isfinite(scores)]
    stats = streamed["score"]
    assert stats["n_infinite"] == 0
    assert stats["mean"] == pytest.approx(finite.mean())
    assert stats["std"] == pytest.approx(finite.std())
    for p in (50, 99, 99.9):
        assert stats[f"p{p:g}"] == np.percentile(finite, p)     # exact below the reservoir
    for key in ("per_service", "per_day", "severity", "sessions", "anomalies", "threshold"):
        assert_close(streamed[key], loaded[key])
    assert streamed["per_day"]["preprocessed_logs_2025-06-01.json"]["severity"]["LOW"] == sum(
        1 for i, r in enumerate(records) if i % 3 == 0 and r["severity"] == "LOW") > 0
    gateway = [r for r in records if r["service_name"] == "gateway"]
    assert streamed["per_service"]["gateway"]["sessions"] == len(gateway)
    assert streamed["per_service"]["gateway"]["anomalies"] == sum(r["is_anomaly"] for r in gateway)
    assert [t["session_id"] for t in streamed["top_anomalies"]] == [
        t["session_id"] for t in loaded["top_anomalies"]]


def test_percentiles_beyond_the_reservoir_come_from_a_uniform_sample(tmp_path):
    path = tmp_path / "r.json"
    records = write_results(path, 20000, seed=1)
    digest = digest_results(path, reservoir=2000)
    assert digest.sample.values.size == 2000 and digest.n == 20000
    finite = np.array([r["anomaly_score"] for r in records], dtype=float)
    finite = finite[np.isfinite(finite)]
    for p in (50, 90, 99):
        exact = np.percentile(finite, p)
        assert abs(np.mean(finite <= np.percentile(digest.sample.values, p)) - p / 100) < 0.02, exact


def test_reservoir_keeps_a_uniform_sample():
    reservoir = ScoreReservoir(size=1000)
    for start in range(0, 100_000, 7_000):
        reservoir.add(np.arange(start, min(start + 7_000, 100_000), dtype=float))
    assert reservoir.values.size == 1000 and reservoir.seen == 100_000
    # Each tenth of the stream holds about a tenth of the sample.
    counts = np.bincount((reservoir.values // 10_000).astype(int), minlength=10)
    assert counts.min() > 60 and counts.max() < 140
