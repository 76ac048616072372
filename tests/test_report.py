"""`radar evaluate / analyze / report`, results reading and threshold calibration methods."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.metrics import f1_score

from radar.cli import cli
from radar.config import DetectionConfig
from radar.errors import ConfigError, DataError, RadarError
from radar.results import load_results
from radar.scoring.calibration import Calibration, best_f1_threshold, check_method, set_threshold
from tests.test_jobs import trained  # noqa: F401  (module fixture: one tiny demo run)

ROOT = Path(__file__).resolve().parents[1]


def _records(n: int = 40, threshold: float = 0.5) -> list[dict]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        score = float(rng.random())
        out.append({"file": f"preprocessed_logs_2025-01-0{1 + i % 2}.json", "session_id": i,
                    "service_name": "gateway" if i % 3 else "research",
                    "anomaly_score": score, "is_anomaly": score > threshold,
                    "threshold": threshold, "has_error": i % 5 == 0, "has_warn": False,
                    "top_positions": []})
    return out


def _write(path: Path, records: list[dict], layout: str) -> Path:
    if layout == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif layout == "lines":   # what radar writes
        path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    else:                     # another tool's pretty-printed array
        path.write_text(json.dumps(records, indent=2))
    return path


@pytest.mark.parametrize("layout", ["lines", "jsonl", "pretty"])
def test_results_read_in_every_layout(tmp_path, layout):
    records = _records()
    results = load_results(_write(tmp_path / "r.json", records, layout), keep_top=3)
    assert results.n == 40 and results.threshold == 0.5
    np.testing.assert_allclose(results.score, [r["anomaly_score"] for r in records])
    assert [r["session_id"] for r in results.top] == [
        r["session_id"] for r in sorted(records, key=lambda r: -r["anomaly_score"])[:3]]


def test_bad_results_name_the_file_and_record(tmp_path):
    records = _records(5)
    del records[3]["anomaly_score"]
    path = _write(tmp_path / "r.json", records, "lines")
    with pytest.raises(DataError, match=r"r\.json.*record 3.*lacks anomaly_score"):
        load_results(path)
    with pytest.raises(DataError, match="does not exist"):
        load_results(tmp_path / "missing.json")
    cut = tmp_path / "cut.json"
    cut.write_text((tmp_path / "r.json").read_text()[:-40])
    result = CliRunner().invoke(cli, ["evaluate", "--results", str(cut)])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_best_f1_threshold_matches_brute_force():
    rng = np.random.default_rng(2)
    labels = rng.random(300) < 0.2
    scores = np.round(rng.random(300) + labels * 0.4, 2)    # ties included
    best, cut = best_f1_threshold(labels, scores)
    brute = max(f1_score(labels, scores > t) for t in np.unique(scores))
    assert best == pytest.approx(brute)
    assert f1_score(labels, scores > cut) == pytest.approx(best)


def test_evaluate_json_with_labels_and_weak_labels(tmp_path):
    records = _records()
    path = _write(tmp_path / "r.json", records, "lines")
    labels = tmp_path / "labels.csv"
    labels.write_text("file,session_id,label\n" + "".join(
        f"{r['file']},{r['session_id']},{int(r['anomaly_score'] > 0.7)}\n" for r in records))
    out = CliRunner().invoke(cli, ["evaluate", "--results", str(path), "--labels", str(labels),
                                   "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    for key in ("precision", "recall", "f1", "roc_auc", "pr_auc", "threshold", "per_service"):
        assert key in report
    assert report["recall"] == 1.0 and report["roc_auc"] == 1.0 and not report["weak_labels"]
    assert set(report["per_service"]) == {"gateway", "research"}
    assert report["best_f1"] == 1.0 and 0.5 <= report["best_f1_threshold"] < 1.0
    weak = json.loads(CliRunner().invoke(cli, ["evaluate", "--results", str(path),
                                               "--json"]).output)
    assert weak["weak_labels"] and "weak" in weak["label_source"]
    table = CliRunner().invoke(cli, ["evaluate", "--results", str(path)])
    assert "WEAK" in table.output
    other = json.loads(CliRunner().invoke(cli, ["evaluate", "--results", str(path), "--labels",
                                                str(labels), "--threshold", "0.7",
                                                "--json"]).output)
    assert other["f1"] == 1.0 and other["threshold_source"] == "--threshold"


def test_calibration_methods():
    rng = np.random.default_rng(3)
    normal = rng.normal(size=5000)
    contaminated = np.concatenate([normal, rng.normal(8, 1, size=250)])   # 5% anomalies
    d = DetectionConfig(threshold_method="percentile")
    clean = set_threshold(d, normal_scores=normal, score_name="s")
    dirty = set_threshold(d, normal_scores=contaminated, score_name="s")
    assert dirty.threshold > 6.0 > clean.threshold     # the percentile lands in the anomalies
    # tail holds the budget on the contaminated sessions: its cut stays
    # below the anomalies, and the false-alarm rate on the normal ones near 0.5%.
    d.threshold_method = "tail"
    tail_clean = set_threshold(d, normal_scores=normal, score_name="s")
    tail_dirty = set_threshold(d, normal_scores=contaminated, score_name="s")
    for calibration in (tail_clean, tail_dirty):
        assert 0.001 <= np.mean(normal > calibration.threshold) <= 0.01   # lighter tail: fewer
    assert np.mean(contaminated[5000:] > tail_dirty.threshold) > 0.99
    assert tail_dirty.flagged_share == pytest.approx(np.mean(contaminated > tail_dirty.threshold))
    d.threshold_method = "best_f1"
    labels = np.r_[np.zeros(5000, int), np.ones(250, int)]
    best = set_threshold(d, normal_scores=normal, score_name="s",
                         holdout_scores=contaminated, holdout_labels=labels)
    assert best.f1 > 0.95 and 2.0 < best.threshold < 6.0
    with pytest.raises(RadarError, match="needs labels"):
        set_threshold(d, normal_scores=normal, score_name="s")
    # Held-out labels of one kind only (a review of other days): the default, percentile.
    only_normal = set_threshold(d, normal_scores=contaminated, score_name="s",
                                holdout_scores=contaminated, holdout_labels=np.zeros(5250, int))
    assert only_normal.method == "percentile"
    assert "best_f1 found 0 anomalous" in only_normal.warning
    with pytest.raises(ConfigError, match="threshold_value"):
        check_method("fixed", None, False)
    with pytest.raises(ConfigError, match="needs labels"):
        check_method("best_f1", None, False)
    old = {"method": "percentile", "threshold": 1.0, "percentile": 99.0, "n_sessions": 5,
           "data": "x", "score_name": "s"}     # a checkpoint written before f1 existed
    assert Calibration.from_dict(old).f1 is None and Calibration.from_dict(old).warning is None


def test_percentile_threshold_warns_when_it_sits_on_a_tie_at_the_top():
    d = DetectionConfig(threshold_method="percentile")
    capped = np.r_[np.linspace(0.0, 5.0, 950), np.full(50, 18.42)]   # 5% at the cap
    tied = set_threshold(d, normal_scores=capped, score_name="s")
    assert tied.threshold == pytest.approx(18.42)
    assert "5.0% of these normal sessions score exactly 18.42" in tied.describe()
    spread = set_threshold(d, normal_scores=np.linspace(0.0, 5.0, 1000), score_name="s")
    assert spread.warning is None and "Warning" not in spread.describe()
    few = np.r_[np.linspace(0.0, 5.0, 998), np.full(2, 18.42)]        # 0.2%: p99.5 below
    assert set_threshold(d, normal_scores=few, score_name="s").warning is None


def test_a_percentile_set_on_too_few_sessions_says_so():
    d = DetectionConfig(threshold_method="percentile")
    small = set_threshold(d, normal_scores=np.linspace(0.0, 5.0, 236), score_name="s")
    assert small.threshold == pytest.approx(np.linspace(0.0, 5.0, 236)[-2])   # 2nd highest
    assert "only 236 sessions set this p99.5 cut (1.2 expected above it)" in small.describe()
    assert "at least 1,000 held-out sessions" in small.warning
    d.threshold_method = "tail"
    assert "only 236 sessions" in set_threshold(d, normal_scores=np.linspace(0.0, 5.0, 236),
                                                score_name="s").warning
    d.threshold_percentile = 95.0                          # 11.8 above: enough
    assert set_threshold(d, normal_scores=np.linspace(0.0, 5.0, 236),
                         score_name="s").warning is None


def test_analyze_shows_top_sessions_with_log_lines(trained, tmp_path):  # noqa: F811
    root, _ = trained
    results = root / "run" / "anomaly_results.json"
    out = CliRunner().invoke(cli, ["analyze", str(results), "--top", "3", "--json"])
    assert out.exit_code == 0, out.output
    analysis = json.loads(out.output)
    assert analysis["sessions"] == 150
    assert set(analysis["score"]) >= {"mean", "min", "max", "p99"}
    top = analysis["top_anomalies"]
    assert top and all(item["log_excerpt"] for item in top), "run folder gives the data dir"
    scores = [item["anomaly_score"] for item in top]
    assert scores == sorted(scores, reverse=True)
    table = CliRunner().invoke(cli, ["analyze", str(results), "--top", "2"])
    assert "Top anomalous sessions" in table.output


def test_report_is_self_contained_and_marks_criteria(trained):  # noqa: F811
    root, _ = trained
    run = root / "run"
    for name in ("report.html", "report.json", "report.md"):   # `radar run` wrote them
        assert (run / name).is_file(), name
    out = CliRunner().invoke(cli, ["report", str(run)])
    assert out.exit_code == 0, out.output
    report = json.loads((run / "report.json").read_text())
    assert [c["key"] for c in report["criteria"]] == ["train_loss", "val_loss", "gap",
                                                      "precision", "recall", "f1"]
    f1 = next(c for c in report["criteria"] if c["key"] == "f1")
    assert f1["value"] == report["metrics"]["f1"] and f1["met"] == (f1["value"] > 0.75)
    assert {"roc_pr", "score_histogram", "training_curve_logbert"} <= set(report["images"])
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(report["images"])
    # Nothing is loaded from anywhere (log lines may mention URLs as text).
    for pattern in ('src="http', "src='http", 'href="http', "url(", "@import", "<script",
                    "<link"):
        assert pattern not in html, pattern
    assert "Success criteria" in (run / "report.md").read_text()
    # says which quality figures are exact and which come from bounded histograms
    assert "bounded score histograms" in (run / "report.md").read_text()
    assert "bounded score histograms" in (run / "report.html").read_text()
    missing = CliRunner().invoke(cli, ["report", str(root / "nowhere")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_report_with_a_label_file_of_other_sessions_falls_back_to_weak_labels(trained,  # noqa: F811
                                                                               tmp_path):
    root, _ = trained
    other = tmp_path / "other_labels.csv"
    other.write_text("BlockId,Label\nblk_1,Anomaly\nblk_2,Normal\n")
    out = CliRunner().invoke(cli, ["report", str(root / "run"), "--labels", str(other)])
    assert out.exit_code == 0, out.output
    report = json.loads((root / "run" / "report.json").read_text())
    assert report["data"]["weak_labels"] and report["data"]["unused_label_file"] == str(other)
    assert "labels none of the reported sessions" in (root / "run" / "report.md").read_text()
    assert CliRunner().invoke(cli, ["report", str(root / "run")]).exit_code == 0   # restore


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(trained, tmp_path):  # noqa: F811
    root, _ = trained
    shot = tmp_path / "report.png"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "report_render.py"),
                           str(root / "run" / "report.html"), "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shot.stat().st_size > 10000


@pytest.mark.parametrize("share", [0.0, 0.01, 0.05, 0.10])
@pytest.mark.parametrize("shape", ["gumbel", "gamma", "exponential", "atom_and_halfnormal"])
def test_tail_threshold_holds_its_budget_under_contamination(shape, share):
    """Normal score shapes with exponential-ish upper tails, a share of anomalies far
    above them: the false-alarm rate stays within 2x of the 0.5% budget and the anomalies
    are caught, for contamination below half the fitted tail share (TAIL_SHARE). (The budget is a promise about the normal tail's shape, not about anomalies
    that overlap it.)"""
    from radar.scoring.calibration import tail_cut

    rng = np.random.default_rng(11)
    n_normal = int(6000 * (1 - share))
    normal = {"gumbel": lambda: rng.gumbel(1.0, 0.5, n_normal),
              "gamma": lambda: rng.gamma(2.0, 0.5, n_normal),
              "exponential": lambda: rng.exponential(1.0, n_normal),
              "atom_and_halfnormal": lambda: np.where(rng.random(n_normal) < 0.6, 0.0,
                                                      np.abs(rng.normal(size=n_normal)))}[shape]()
    anomalies = rng.uniform(np.quantile(normal, 0.999), 18.0, 6000 - n_normal)
    cut = tail_cut(np.r_[normal, anomalies], 0.005)
    assert np.mean(normal > cut) <= 0.01
    assert anomalies.size == 0 or np.mean(anomalies > cut) >= 0.95
