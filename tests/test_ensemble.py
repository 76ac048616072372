"""Ensemble scoring: normalisers, combiners, severity, and `radar run` with several detectors,
one of them a third-party package that joins through the entry-point group alone."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from radar.config import EnsembleConfig, SeverityConfig
from radar.errors import ConfigError, RadarError
from radar.plugins import get_combiner_class, get_severity_class, reset_plugin_manager
from radar.scoring.normalize import Normalizer
from radar.scoring.severity import LEVELS
from tests.test_jobs import run_args

rng = np.random.default_rng(0)


# -- normalisers ------------------------------------------------------------------------
def test_ecdf_reads_as_rarity_among_normal_sessions_and_keeps_order_beyond_them():
    normal = rng.normal(size=20000)
    norm = Normalizer("ecdf").fit(normal)
    p99, p999 = np.quantile(normal, [0.99, 0.999])
    assert norm.transform(np.array([p99]))[0] == pytest.approx(2.0, abs=0.1)
    assert norm.transform(np.array([p999]))[0] == pytest.approx(3.0, abs=0.2)
    beyond = normal.max() + np.array([0.5, 1.0, 5.0])
    values = norm.transform(beyond)
    assert np.all(np.diff(values) > 0), "sessions beyond every normal one must not tie"
    grid = np.linspace(-5, 10, 500)
    assert np.all(np.diff(norm.transform(grid)) >= 0), "monotone"
    assert norm.transform(np.array([np.inf]))[0] == np.inf
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_allclose(again.transform(grid), norm.transform(grid))


def test_robust_z_and_errors():
    norm = Normalizer("robust_z").fit(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert norm.transform(np.array([3.0]))[0] == 0.0          # the median
    with pytest.raises(RadarError, match="ensemble.normalize"):
        Normalizer("zscore")
    with pytest.raises(RadarError, match="no finite"):
        Normalizer("ecdf").fit(np.array([np.nan]))


# -- combiners ----------------------------------------------------------------------------
def _fitted(name: str, config: dict | None = None):
    normal = np.stack([rng.normal(size=2000), rng.exponential(size=2000) * 10], axis=1)
    thresholds = list(np.quantile(normal, 0.99, axis=0))
    return get_combiner_class(name)(EnsembleConfig(**(config or {}))).fit(
        normal, ["a", "b"], thresholds)


@pytest.mark.parametrize("name", ["mean", "max", "weighted_mean", "rank_average", "vote"])
def test_combiners_rank_an_outlier_in_either_detector_above_normal(name):
    scorer = _fitted(name)
    typical = np.array([[0.0, 7.0]])
    outlier_a = np.array([[6.0, 7.0]])       # only detector a alarms
    both = np.array([[6.0, 90.0]])
    s = [scorer.combine(x)[0] for x in (typical, outlier_a, both)]
    assert s[0] < s[1] <= s[2] or name == "vote"
    assert s[0] < s[2]


def test_vote_is_a_majority_of_the_detectors_own_decisions():
    scorer = _fitted("vote")
    one_of_two = scorer.combine(np.array([[6.0, 0.1]]))[0]
    two_of_two = scorer.combine(np.array([[6.0, 90.0]]))[0]
    assert scorer.fixed_threshold == 0.5
    assert one_of_two <= 0.5 < two_of_two


def test_weighted_mean_checks_weights():
    scorer = _fitted("weighted_mean", {"weights": {"a": 3.0}})
    x = np.array([[6.0, 0.1]])
    heavy_a = scorer.combine(x)[0]
    assert heavy_a > _fitted("weighted_mean").combine(x)[0]
    with pytest.raises(ConfigError, match="ensemble.weights names c"):
        _fitted("weighted_mean", {"weights": {"c": 1.0}}).combine(x)


# -- severity -----------------------------------------------------------------------------
def test_severity_weights_services_and_raises_on_errors():
    scorer = get_severity_class("service_weighted")(SeverityConfig(
        levels={"LOW": 0.0, "MEDIUM": 1.0, "HIGH": 2.0, "CRITICAL": 3.0},
        service_weights={"gateway": 2.0}, error_raise=1, warn_raise=0))
    score = np.array([0.5, 2.5, 2.0, 0.5, 4.5])
    service = np.array([0, 0, 1, 0, 1])
    error = np.array([False, False, False, True, False])
    out = scorer.assess(score, 1.0, ["research", "gateway"], service, error,
                        np.zeros(5, bool))
    assert out.names() == ["NORMAL", "MEDIUM", "HIGH", "LOW", "CRITICAL"]
    assert any("gateway weighs 2" in reason for reason in out.reasons[2])
    assert any("ERROR" in reason for reason in out.reasons[3])
    with pytest.raises(ConfigError, match="unknown level"):
        get_severity_class("service_weighted")(SeverityConfig(levels={"SEVERE": 1.0})).assess(
            score, 1.0, ["r", "g"], service, error, error)


# -- end to end: logbert + a third-party detector package ---------------------------------
UNIGRAM_PLUGIN = '''
import torch
from radar.detector import Detector, SessionScores
from radar.hookspecs import hookimpl


class Unigram(Detector):
    """How rare each event is overall; the session's rarest event is its score."""

    name = "unigram"

    def build_model(self, vocab, window):
        model = torch.nn.Module()
        model.logits = torch.nn.Parameter(torch.zeros(len(vocab)))
        return model

    def _nll(self, model, batch):
        nll = -torch.log_softmax(model.logits, 0)[batch.input_ids]
        return nll.masked_fill(~batch.attention_mask, 0.0)

    def training_loss(self, model, batch):
        return self._nll(model, batch).sum() / batch.lengths.sum()

    def score_sessions(self, model, batch):
        with torch.no_grad():
            return SessionScores(score=self._nll(model, batch).amax(dim=1))


@hookimpl
def register_detectors(register):
    register(Unigram)
'''


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    """One ensemble run (logbert + the third-party unigram package) shared by the tests
    below, which run in file order: outputs, reuse, detect, then recalibration."""
    from radar.cli import cli
    from radar.data.synth import generate
    from tests.conftest import install_dist

    root = tmp_path_factory.mktemp("ensemble")
    site = root / "site"
    site.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        install_dist(site, "radar-unigram", {"unigram": "radar_unigram"},
                     {"radar_unigram": UNIGRAM_PLUGIN})
        reset_plugin_manager()
        generate(root / "data", days=3, sessions=150, anomaly_rate=0.1, seed=5)
        args = ["run", "--detector", "logbert", "--detector", "unigram", *run_args(root),
                "--set", "severity.service_weights={gateway: 2.0}"]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        yield root, args, result
    sys.modules.pop("radar_unigram", None)
    reset_plugin_manager()


def test_ensemble_run_writes_every_detector_and_the_combination(ensemble_run):
    root, args, result = ensemble_run
    run = root / "run"
    for name in ("logbert", "unigram"):
        assert (run / name / "best_model.pt").is_file()
        assert len(json.loads((run / name / "anomaly_results.json").read_text())) == 150
    records = json.loads((run / "anomaly_results.json").read_text())
    assert len(records) == 150
    first = records[0]
    assert set(first["detectors"]) == {"logbert", "unigram"}
    assert first["severity"] in LEVELS and isinstance(first["severity_reasons"], list)
    assert all((r["severity"] != "NORMAL") >= r["is_anomaly"] for r in records)
    state = json.loads((run / "ensemble.json").read_text())
    assert state["method"] == "mean" and set(state["checkpoints"]) == {"logbert", "unigram"}
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["per_detector"]) == {"logbert", "unigram"}
    assert "logbert~unigram" in summary["agreement"]["pairs"]
    report = json.loads((run / "report.json").read_text())
    assert report["ensemble"] and set(report["per_detector"]) == {"logbert", "unigram"}
    assert "severity_by_service" in report["images"]
    assert "Detectors and ensemble" in result.output

    # A second run with the same settings reuses both trained detectors.
    from radar.cli import cli

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("reusing the trained and calibrated") == 2
    assert json.loads((run / "anomaly_results.json").read_text()) == records


def test_detect_with_a_saved_ensemble_reproduces_the_run(ensemble_run, tmp_path):
    from radar.cli import cli

    root, _, _ = ensemble_run
    run = root / "run"
    day = max((root / "data").glob("preprocessed_logs_*.json"))
    out = tmp_path / "again.json"
    result = CliRunner().invoke(cli, ["detect", "--ensemble", str(run), "--input", str(day),
                                      "--output", str(out)])
    assert result.exit_code == 0, result.output
    again = json.loads(out.read_text())
    first = json.loads((run / "anomaly_results.json").read_text())
    assert [r["anomaly_score"] for r in again] == pytest.approx(
        [r["anomaly_score"] for r in first])
    assert [r["severity"] for r in again] == [r["severity"] for r in first]
    both = CliRunner().invoke(cli, ["detect", "--input", str(day)])
    assert both.exit_code == 2 and "exactly one of --checkpoint" in both.output


def test_changing_only_detection_settings_recalibrates_without_retraining(ensemble_run):
    from radar.cli import cli

    root, args, _ = ensemble_run
    run = root / "run"
    before = (run / "logbert" / "metrics.jsonl").read_text()
    changed = [*args, "--set", "detection.threshold_percentile=99.0"]
    import radar.pipeline

    calls = []
    original = radar.pipeline.score_corpus
    with pytest.MonkeyPatch.context() as patch:   # the ensemble reuses calibration's scores
        patch.setattr(radar.pipeline, "score_corpus",
                      lambda *a, **k: calls.append(1) or original(*a, **k))
        result = CliRunner().invoke(cli, changed)
    assert result.exit_code == 0, result.output
    assert result.output.count("recalibrating") == 2
    assert calls == []
    assert (run / "logbert" / "metrics.jsonl").read_text() == before      # not retrained
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["percentile"] == 99.0
    again = CliRunner().invoke(cli, changed)     # now the stored calibration matches
    assert again.output.count("reusing the trained and calibrated") == 2
