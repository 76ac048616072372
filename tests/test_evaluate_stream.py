"""`radar evaluate` in bounded memory (issue #15): it streams the results file through the
digest a chunk at a time, never loads its columns, and gives what sklearn gives on all of
them at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import radar.report.digest as digest_module
import radar.report.evaluate as evaluate_module
import radar.results as results_module
import radar.scoring.tally as tally_module
from radar.cli import cli
from radar.data.labels import write_labels
from radar.report.metrics import binary_metrics
from radar.scoring.calibration import best_f1_threshold

THRESHOLD = 0.6
EXACT_KEYS = ("tp", "fp", "fn", "tn", "n", "n_anomalous", "n_unlabelled", "precision",
              "recall", "f1", "threshold")
CURVE_KEYS = ("roc_auc", "pr_auc", "best_f1", "best_f1_threshold")


def exact_evaluation(score, labels, groups: dict[str, list[str]], threshold: float) -> dict:
    """What `radar evaluate` reported when it loaded every column: sklearn on all sessions
    at once, overall and per group (labelled sessions only). ``groups``: key -> each
    session's group name."""
    score, labels = np.asarray(score, dtype=np.float64), np.asarray(labels)

    def metrics(rows: np.ndarray) -> dict:
        known = rows & (labels >= 0)
        out = binary_metrics(labels[known] == 1, score[known], threshold)
        out["n_unlabelled"] = int((rows & (labels < 0)).sum())
        out["best_f1"], out["best_f1_threshold"] = best_f1_threshold(labels[known] == 1,
                                                                     score[known])
        return out

    report = metrics(np.ones(score.size, dtype=bool))
    for key, names in groups.items():
        names = np.asarray(names)
        report[key] = {name: metrics((names == name) & (labels >= 0))
                       for name in dict.fromkeys(names.tolist())
                       if ((names == name) & (labels >= 0)).any()}
    return report


def assert_matches(ours: dict, exact: dict, *, abs_curve: float = 1e-12) -> None:
    """Exact figures equal, curve figures within ``abs_curve``, overall and per group."""
    for key in EXACT_KEYS:
        assert ours[key] == exact[key], key
    for key in CURVE_KEYS:
        assert ours[key] == pytest.approx(exact[key], abs=abs_curve), key
    for group in ("per_service", "per_day"):
        if group in exact:
            assert ours[group].keys() == exact[group].keys()
            for name, entry in exact[group].items():
                assert_matches(ours[group][name], entry, abs_curve=abs_curve)


def _write_run(folder: Path, n: int = 900, threshold: float | None = THRESHOLD
               ) -> tuple[Path, Path, dict]:
    """A results file over three days and three services (scores with ties; a few
    sessions unlabelled) and its label file; returns the columns the test checks with."""
    rng = np.random.default_rng(5)
    label = (rng.random(n) < 0.2).astype(np.int8)
    score = np.round(rng.random(n) * 0.8 + 0.3 * label, 2)
    services = [("gateway", "research", "auth")[i % 3] for i in range(n)]
    days = [f"preprocessed_logs_2025-01-0{1 + 3 * i // n}.json" for i in range(n)]
    records = [{"file": days[i], "session_id": i, "service_name": services[i],
                "anomaly_score": float(score[i]), "is_anomaly": False,
                "has_error": bool(i % 7 == 0), "top_positions": []} for i in range(n)]
    for record in records:
        if threshold is not None:
            record["threshold"] = threshold
    results = folder / "anomaly_results.json"
    results.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    unlabelled = rng.random(n) < 0.05
    labels = folder / "labels.csv"
    write_labels(labels, [(days[i], i, int(label[i])) for i in range(n) if not unlabelled[i]])
    columns = {"score": score, "label": np.where(unlabelled, -1, label),
               "has_error": np.array([r["has_error"] for r in records], dtype=np.int8),
               "groups": {"per_service": services, "per_day": days}}
    return results, labels, columns


def _evaluate(*args: str) -> dict:
    out = CliRunner().invoke(cli, ["evaluate", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if anything loads a results file's columns."""
    def refuse(*args, **kwargs):
        raise AssertionError("radar evaluate loaded a results file's columns")

    monkeypatch.setattr(results_module, "load_results", refuse)
    monkeypatch.setattr(evaluate_module, "load_results", refuse, raising=False)


def test_evaluate_streams_chunks_and_matches_sklearn(tmp_path, monkeypatch, no_loading):
    results, labels, columns = _write_run(tmp_path)
    chunk = 64
    monkeypatch.setattr(digest_module, "CHUNK", chunk)
    handed = []
    real_add = tally_module.EvaluationTally.add

    def recording(self, scores, labels, groups):
        handed.append(len(scores))
        return real_add(self, scores, labels, groups)

    monkeypatch.setattr(tally_module.EvaluationTally, "add", recording)
    report = _evaluate("--results", str(results), "--labels", str(labels))
    assert max(handed) == chunk          # the tallies never saw more than a chunk at once
    exact = exact_evaluation(columns["score"], columns["label"], columns["groups"], THRESHOLD)
    assert_matches(report, exact)
    assert report["n_unlabelled"] == int((columns["label"] < 0).sum()) > 0
    assert not report["weak_labels"] and report["label_source"] == str(labels)
    assert report["threshold_source"] == evaluate_module.FILE_THRESHOLD
    assert report["results"] == str(results)
    assert report["figures"]["histograms_exact"] and report["figures"]["roc_auc_max_error"] == 0
    assert set(report["figures"]["from_histogram"]) == set(CURVE_KEYS)


def test_weak_labels_without_a_label_file(tmp_path, no_loading):
    results, _, columns = _write_run(tmp_path)
    report = _evaluate("--results", str(results))
    exact = exact_evaluation(columns["score"], columns["has_error"], columns["groups"],
                             THRESHOLD)
    assert_matches(report, exact)
    assert report["weak_labels"] and report["label_source"] == evaluate_module.WEAK_SOURCE


def test_threshold_override_moves_the_confusion_counts(tmp_path, no_loading):
    results, labels, columns = _write_run(tmp_path)
    at_file = _evaluate("--results", str(results), "--labels", str(labels))
    at_given = _evaluate("--results", str(results), "--labels", str(labels),
                         "--threshold", "0.45")
    assert_matches(at_given, exact_evaluation(columns["score"], columns["label"],
                                              columns["groups"], 0.45))
    assert at_given["threshold"] == 0.45 and at_given["threshold_source"] == "--threshold"
    assert at_given["fp"] > at_file["fp"] and at_given["fn"] < at_file["fn"]
    for key in CURVE_KEYS:                       # the curves do not depend on the threshold
        assert at_given[key] == at_file[key]
    # A file that records no threshold is evaluated at the one given, and refused without.
    (tmp_path / "bare").mkdir()
    bare, _, _ = _write_run(tmp_path / "bare", threshold=None)
    assert _evaluate("--results", str(bare), "--labels", str(labels),
                     "--threshold", "0.45")["tp"] == at_given["tp"]
    out = CliRunner().invoke(cli, ["evaluate", "--results", str(bare)])
    assert out.exit_code == 1
    assert "does not record one threshold" in out.stderr and "--threshold" in out.stderr


def test_labels_of_other_sessions_are_refused(tmp_path):
    results, _, _ = _write_run(tmp_path)
    other = tmp_path / "other.csv"
    write_labels(other, [("preprocessed_logs_2024-12-31.json", i, i % 2) for i in range(10)])
    out = CliRunner().invoke(cli, ["evaluate", "--results", str(results), "--labels",
                                   str(other)])
    assert out.exit_code == 1
    assert f"has a label in {other}" in out.stderr and "Traceback" not in out.output


def test_the_table_says_when_the_curves_come_from_merged_histograms(tmp_path, monkeypatch):
    results, labels, columns = _write_run(tmp_path)
    monkeypatch.setattr(tally_module, "OVERALL_BINS", 8)     # far fewer bins than scores
    report = _evaluate("--results", str(results), "--labels", str(labels))
    figures = report["figures"]
    assert not figures["histograms_exact"] and 0 < figures["roc_auc_max_error"] < 0.5
    exact = exact_evaluation(columns["score"], columns["label"], {}, THRESHOLD)
    for key in ("tp", "fp", "fn", "tn", "precision", "recall", "f1"):
        assert report[key] == exact[key]             # exact whatever the bins
    assert abs(report["roc_auc"] - exact["roc_auc"]) <= figures["roc_auc_max_error"]
    table = CliRunner().invoke(cli, ["evaluate", "--results", str(results), "--labels",
                                     str(labels)], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "bounded score histograms, within" in " ".join(table.output.split())
