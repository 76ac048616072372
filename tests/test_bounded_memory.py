"""Memory bounded by design (issue #15): scoring holds a bounded chunk of whole day files at
a time, the report never loads a results file's columns, and the bounded-memory figures
match the exact ones."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import average_precision_score, roc_auc_score

import radar.report.build as build_module
import radar.results as results_module
import radar.scoring.run as runner_module
from radar.cli import cli
from radar.data.labels import read_labels
from radar.data.synth import generate
from radar.report.build import build_report
from radar.report.metrics import binary_metrics
from radar.results import LabelJoin, load_results, write_results
from radar.scoring.calibration import best_f1_threshold
from radar.scoring.combine import agreement
from radar.scoring.tally import AgreementTally, AlignedSample, QualityTally, SummaryTally
from tests.conftest import tiny_demo_run
from tests.test_evaluate_stream import exact_evaluation

DAYS, SESSIONS = 4, 60


def labels_for(results, table) -> np.ndarray:
    """The exact, unbounded reference: labels of every loaded session at once."""
    return LabelJoin(table).labels(results.files, results.file, results.session_id,
                                   results.session_key)



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained LogBERT whose run reports on two labelled validation days."""
    root = tmp_path_factory.mktemp("bounded")
    generate(root / "data", days=DAYS, sessions=SESSIONS, anomaly_rate=0.15, seed=7)
    tiny_demo_run(root, "data.val_fraction=0.5")
    return root


@pytest.mark.parametrize("chunk, expected", [
    (120, [(2, 2 * SESSIONS)] * (DAYS // 2)),        # two whole days of 60 fit
    (100, [(1, SESSIONS)] * DAYS),                   # one does
    (25, [(1, 25), (1, 25), (1, SESSIONS - 50)] * DAYS),   # each day in slices
    (1, [(1, 1)] * (DAYS * SESSIONS))])
def test_scoring_is_never_handed_more_than_a_chunk(trained, tmp_path, monkeypatch, chunk,
                                                   expected):
    """Whole days are gathered while a chunk holds at most CHUNK_SESSIONS sessions; a
    bigger day is scored in slices of that many; the records come out in file and row
    order all the same."""
    seen = []
    real = runner_module.score_corpus

    def recording(loaded, corpus, **kwargs):
        seen.append((len(corpus.days), corpus.n_sessions))
        return real(loaded, corpus, **kwargs)

    monkeypatch.setattr(runner_module, "score_corpus", recording)
    monkeypatch.setattr(runner_module, "CHUNK_SESSIONS", chunk)
    out = tmp_path / "results.json"
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(trained / "run" /
                                                                     "best_model.pt"),
                                      "--input", str(trained / "data"), "--output", str(out),
                                      "--labels", str(trained / "data" / "labels.csv")])
    assert result.exit_code == 0, result.output
    assert seen == expected
    records = json.loads(out.read_text())
    assert len(records) == DAYS * SESSIONS
    # The scores one corpus of all days gives (the default chunk holds them all).
    monkeypatch.undo()
    whole = tmp_path / "whole.json"
    assert CliRunner().invoke(cli, ["detect", "--checkpoint", str(trained / "run" /
                                                                  "best_model.pt"),
                                    "--input", str(trained / "data"), "--output",
                                    str(whole)]).exit_code == 0
    expected_scores = [r["anomaly_score"] for r in json.loads(whole.read_text())]
    assert [r["anomaly_score"] for r in records] == pytest.approx(expected_scores, rel=1e-4,
                                                                        abs=1e-5)
    # Chunk by chunk, in day order, row by row: the order one corpus of all days gave.
    files = [r["file"] for r in records]
    assert files == sorted(files)
    assert all(b["session_id"] > a["session_id"] for a, b in itertools.pairwise(records)
               if a["file"] == b["file"])


def test_summary_summed_day_by_day_is_the_summary_of_all_sessions(trained, tmp_path):
    out = tmp_path / "results.json"
    labels_path = trained / "data" / "labels.csv"
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(trained / "run" /
                                                                     "best_model.pt"),
                                      "--input", str(trained / "data"), "--output", str(out),
                                      "--labels", str(labels_path)])
    assert result.exit_code == 0, result.output
    results = load_results(out)
    labels = labels_for(results, read_labels(labels_path))
    exact = binary_metrics(labels[labels >= 0] == 1, results.score[labels >= 0],
                           results.threshold)
    tally = SummaryTally(results.threshold)
    for day in range(len(results.files)):        # the same sessions, a day at a time
        rows = results.file == day
        tally.add(results.services, results.service[rows], results.score[rows], labels[rows])
    summary = tally.summary("labels.csv")
    assert summary["sessions"] == DAYS * SESSIONS
    for key in ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "n"):
        assert summary["metrics"][key] == exact[key]
    # Fewer distinct scores than bins: the curve figures are exact too.
    assert summary["metrics"]["roc_auc"] == pytest.approx(exact["roc_auc"], abs=1e-12)
    assert summary["metrics"]["pr_auc"] == pytest.approx(exact["pr_auc"], abs=1e-12)


def test_the_report_never_loads_the_results_columns(trained, monkeypatch):
    run = trained / "run"
    loaded = load_results(run / "anomaly_results.json")       # the exact, unbounded way
    expected = exact_evaluation(
        loaded.score, labels_for(loaded, read_labels(trained / "data" / "labels.csv")),
        {"per_service": [loaded.services[i] for i in loaded.service],
         "per_day": [loaded.files[i] for i in loaded.file]}, loaded.threshold)

    def refuse(*args, **kwargs):
        raise AssertionError("radar report loaded a results file's columns")

    monkeypatch.setattr(results_module, "load_results", refuse)
    monkeypatch.setattr(build_module, "load_results", refuse, raising=False)
    report, images = build_report(run)
    metrics = report["metrics"]
    assert not report["data"]["weak_labels"] and "roc_pr" in images
    for key in ("tp", "fp", "fn", "tn", "n", "n_anomalous", "precision", "recall", "f1"):
        assert metrics[key] == expected[key]
    for key in ("roc_auc", "pr_auc", "best_f1", "best_f1_threshold"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-12)
    assert metrics["figures"]["histograms_exact"]
    assert metrics["per_service"].keys() == expected["per_service"].keys()
    for name, entry in expected["per_day"].items():
        assert metrics["per_day"][name]["tp"] == entry["tp"]
        assert metrics["per_day"][name]["roc_auc"] == pytest.approx(entry["roc_auc"], abs=1e-12)


def test_histogram_figures_are_exact_below_the_bin_limit_and_close_beyond():
    rng = np.random.default_rng(0)
    n = 20_000
    labels = (rng.random(n) < 0.08).astype(np.int8)
    # A body and, for the anomalies, a tight cluster near a saturation value (as LogBERT's
    # -log of its probability floor makes): the hardest case for bins.
    scores = rng.gamma(2.0, 1.0, n)
    cluster = (labels == 1) | (rng.random(n) < 0.02)     # some normal sessions there too
    scores[cluster] = 18.42 + rng.normal(0, 1e-3, int(cluster.sum()))
    exact = {"roc_auc": roc_auc_score(labels, scores),
             "pr_auc": average_precision_score(labels, scores)}
    best, cut = best_f1_threshold(labels == 1, scores)

    whole = QualityTally(5.0, max_bins=1 << 16)
    for start in range(0, n, 3000):                      # chunked as the days come
        whole.add(scores[start:start + 3000], labels[start:start + 3000])
    m = whole.metrics(with_best_f1=True)
    assert whole.histogram.exact
    assert m["roc_auc"] == pytest.approx(exact["roc_auc"], abs=1e-12)
    assert m["pr_auc"] == pytest.approx(exact["pr_auc"], abs=1e-12)
    assert (m["best_f1"], m["best_f1_threshold"]) == pytest.approx((best, cut))
    assert (m["tp"], m["fp"]) == (int(((scores > 5) & (labels == 1)).sum()),
                                  int(((scores > 5) & (labels == 0)).sum()))

    small = QualityTally(5.0, max_bins=512)              # forced to merge scores
    for start in range(0, n, 3000):
        small.add(scores[start:start + 3000], labels[start:start + 3000])
    approx = small.metrics(with_best_f1=True)
    histogram = small.histogram
    assert not histogram.exact and histogram.low.size <= 512
    bound = histogram.roc_auc_error_bound()
    assert 0 < bound < 1e-3
    assert abs(approx["roc_auc"] - exact["roc_auc"]) <= bound
    assert approx["pr_auc"] == pytest.approx(exact["pr_auc"], abs=2e-3)
    assert approx["best_f1"] == pytest.approx(best)       # cuts between classes survive
    assert (approx["tp"], approx["fp"], approx["f1"]) == (m["tp"], m["fp"], m["f1"])  # exact


def test_non_finite_scores_rank_as_binary_metrics_ranks_them():
    scores = np.array([0.1, 0.4, np.inf, np.nan, 0.3, -np.inf, 0.2, 0.9])
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1], dtype=np.int8)
    tally = QualityTally(0.35)
    tally.add(scores, labels)
    ours, theirs = tally.metrics(), binary_metrics(labels == 1, scores, 0.35)
    assert ours == pytest.approx(theirs)


def test_agreement_summed_in_chunks_is_the_agreement_of_all_sessions():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=3000), rng.normal(size=3000)
    b = 0.6 * a + 0.4 * b
    tally = AgreementTally(["x", "y"], [1.0, 0.8])
    for start in range(0, 3000, 700):
        tally.add([a[start:start + 700], b[start:start + 700]])
    ours, theirs = tally.result(), agreement(["x", "y"], [a, b], [1.0, 0.8])
    assert ours["flagged_by"] == theirs["flagged_by"]
    assert ours["pairs"]["x~y"] == pytest.approx(theirs["pairs"]["x~y"])


def test_aligned_samples_pick_the_same_positions_in_every_file():
    first, second = AlignedSample(100, 1), AlignedSample(100, 1)
    values = np.arange(10_000, dtype=float)
    for start in range(0, 10_000, 999):                  # different chunkings
        first.add(np.arange(start, min(start + 999, 10_000)), values[start:start + 999, None])
    for start in range(0, 10_000, 4096):
        second.add(np.arange(start, min(start + 4096, 10_000)), -values[start:start + 4096, None])
    assert np.array_equal(first.values, -second.values) and first.values.shape == (100, 1)
    assert 3500 < first.values.mean() < 6500             # spread over the whole file


def test_results_stream_in_the_format_they_always_had(tmp_path):
    records = [{"file": "a", "session_id": 1, "anomaly_score": float("inf")},
               {"file": "a", "session_id": 2, "anomaly_score": 0.5}]
    write_results(tmp_path / "r.json", iter(records))
    assert (tmp_path / "r.json").read_text() == (
        '[\n{"file": "a", "session_id": 1, "anomaly_score": 1.7976931348623157e+308},\n'
        '{"file": "a", "session_id": 2, "anomaly_score": 0.5}\n]\n')
    write_results(tmp_path / "e.json", iter([]))
    assert (tmp_path / "e.json").read_text() == "[\n]\n"
    write_results(tmp_path / "r.jsonl", iter(records[1:]), "jsonl")
    assert (tmp_path / "r.jsonl").read_text() == (
        '{"file": "a", "session_id": 2, "anomaly_score": 0.5}\n')


def test_best_f1_counts_only_what_a_cut_can_flag():
    # NaN and -inf scores rank at the top for the curves, but `score > cut` never flags
    # them: the best F1 must be one a threshold reaches (here: cut between 0.4 and 0.9).
    scores = np.array([0.9, 0.8, np.nan, np.nan, -np.inf, 0.4, 0.3, 0.2, np.inf])
    labels = np.array([1, 1, 0, 0, 0, 0, 0, 0, 1], dtype=np.int8)
    tally = QualityTally(0.5)
    tally.add(scores, labels)
    ours = tally.metrics(with_best_f1=True)
    assert ours["best_f1"] == pytest.approx(1.0)
    assert 0.4 <= ours["best_f1_threshold"] < 0.8
    reached = binary_metrics(labels == 1, scores, ours["best_f1_threshold"])
    assert reached["f1"] == pytest.approx(ours["best_f1"])
