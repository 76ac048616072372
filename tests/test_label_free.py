"""The label-free road: which sessions train and calibrate, the cross-fitted ensemble
threshold, and a report that never claims quality from has_error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from radar.config import load_config
from radar.data.selection import holdout_masks, normal_mask
from radar.errors import ConfigError, RadarError
from radar.report.build import build_report, write_report
from radar.results import load_results, write_results
from radar.rundir import RunDir
from radar.scoring.calibration import knee_cut
from radar.scoring.combine import Combination, cross_fitted_scores
from radar.scoring.run import RunScorer


class _Day:
    def __init__(self, n: int, flags=None):
        self.n_sessions = n
        self.flags = np.zeros(n, np.uint8) if flags is None else np.asarray(flags, np.uint8)


def test_newest_whole_days_are_held_out_and_few_days_fall_back_to_sessions():
    days = [_Day(100), _Day(100), _Day(100), _Day(100)]
    held = holdout_masks(days, 0.1, 0, "days")
    assert [bool(mask.all()) for mask in held] == [False, False, False, True]
    assert not any(mask.any() for mask in held[:3])
    held = holdout_masks(days, 0.4, 0, "days")          # 40% of 400: the two newest days
    assert [bool(mask.all()) for mask in held] == [False, False, True, True]
    two = holdout_masks(days[:2], 0.1, 0, "days")       # too few days: a share of each
    assert all(0 < mask.sum() < 100 for mask in two)
    assert all(not mask.all() for mask in holdout_masks(days, 0.9, 0, "days")[:1])


def test_a_random_held_out_share_is_capped_like_whole_days():
    from radar.data.selection import MAX_HELD_OUT_SESSIONS

    big = [_Day(1_500_000), _Day(1_500_000)]        # 10% would be 300,000 sessions
    held = sum(int(mask.sum()) for mask in holdout_masks(big, 0.1, 0, "sessions"))
    assert abs(held - MAX_HELD_OUT_SESSIONS) < 0.01 * MAX_HELD_OUT_SESSIONS


def test_unlabelled_sessions_train_and_only_confirmed_anomalies_are_dropped():
    day = _Day(5, flags=[1, 0, 1, 0, 0])                  # bit 0: has_error
    labels = np.array([1, 0, -1, -1, 0], np.int8)          # a review: two rows unknown
    assert normal_mask(day, labels, "labels").tolist() == [False, True, True, True, True]
    assert normal_mask(day, None, "all").all()             # the default: every session
    assert normal_mask(day, None, "no_error").tolist() == [False, True, False, True, True]
    with pytest.raises(RadarError, match="needs a label file"):
        normal_mask(day, None, "labels")


def test_defaults_are_the_label_free_road():
    config = load_config(None, [])
    assert config.data.train_filter == "all"
    assert config.data.calibration_split == "days"
    assert config.detection.threshold_method == "percentile"


def _member_scores(rng, n, anomalies):
    """Two detectors; each sees half of the anomalies (so max should catch all)."""
    normal = np.stack([rng.gumbel(1.0, 0.4, n), rng.gamma(2.0, 1.0, n)], axis=1)
    a = np.stack([rng.uniform(5, 9, anomalies), rng.gamma(2.0, 1.0, anomalies)], axis=1)
    b = np.stack([rng.gumbel(1.0, 0.4, anomalies), rng.uniform(15, 30, anomalies)], axis=1)
    return normal, np.concatenate([a, b])


def test_the_ensemble_threshold_is_cross_fitted_and_holds_its_budget():
    """An in-sample ecdf gives each detector's most extreme held-out session the top
    value and the threshold lands on it; cross-fitted, the false-alarm rate on new
    normal sessions stays near the 0.5% budget and most one-detector anomalies are caught."""
    rng = np.random.default_rng(5)
    held, held_anomalies = _member_scores(rng, 600, 15)       # 5% contamination
    raw = np.concatenate([held, held_anomalies])
    config = load_config(None, ["ensemble.method=max", "detection.threshold_method=tail",
                                "ensemble.threshold=detection"])
    combination = Combination.fit(config, raw, ["a", "b"], [3.0, 8.0])
    assert combination.calibration.method == "tail"
    out_of_fold = cross_fitted_scores(config.ensemble, raw, ["a", "b"], [3.0, 8.0],
                                      np.ones(len(raw), bool), seed=0)
    in_sample = combination.combiner.combine(raw)
    assert not np.allclose(out_of_fold, in_sample)
    fresh, fresh_anomalies = _member_scores(rng, 20000, 200)
    _, combined, _ = combination.apply(fresh, ["s"], np.zeros(len(fresh), int),
                                       np.zeros(len(fresh), np.uint8))
    false_alarms = np.mean(combined > combination.calibration.threshold)
    assert false_alarms < 0.02
    _, caught, _ = combination.apply(fresh_anomalies, ["s"], np.zeros(400, int),
                                     np.zeros(400, np.uint8))
    assert np.mean(caught > combination.calibration.threshold) > 0.8


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1])
def test_the_label_free_ensemble_cut_finds_the_rate_it_is_not_told(rate):
    """The knee of the held-out combined scores: the share it flags there follows the
    anomaly rate (1%, 5%, 10%), and fresh normal sessions stay near the 0.5% budget."""
    rng = np.random.default_rng(11)
    n = 4000
    normal = rng.gumbel(1.0, 0.4, (n, 3)) + rng.normal(0, 0.3, (n, 1))   # correlated
    anomalies = rng.uniform(3.0, 8.0, (int(rate * n), 3))
    config = load_config(None, [])
    assert (config.ensemble.method, config.ensemble.threshold) == ("mean", "knee")
    combination = Combination.fit(config, np.concatenate([normal, anomalies]),
                                  ["a", "b", "c"], [2.0, 2.0, 2.0])
    calibration = combination.calibration
    assert calibration.method == "knee" and "knee" in calibration.describe()
    # At 1% the knee takes in the top of the normal tail too (measured on generated days:
    # 1.1-1.2% false alarms at a 1% rate); it never presumes the rate.
    assert rate * 0.8 <= calibration.flagged_share <= rate + 0.015, calibration.flagged_share
    fresh = rng.gumbel(1.0, 0.4, (20000, 3)) + rng.normal(0, 0.3, (20000, 1))
    _, combined, _ = combination.apply(fresh, ["s"], np.zeros(20000, int),
                                       np.zeros(20000, np.uint8))
    assert np.mean(combined > calibration.threshold) < 0.015


def test_a_few_extreme_scores_do_not_drag_the_knee_up():
    rng = np.random.default_rng(4)
    held = np.r_[rng.gumbel(1.0, 0.3, 2000), rng.uniform(3.0, 5.0, 100)]
    cuts = [knee_cut(np.r_[held, extreme]) for extreme in ([], [60.0], [60.0, 80.0, 400.0],
                                                          [1e6])]
    assert all(0.04 <= np.mean(held > cut) <= 0.075 for cut in cuts), cuts   # rate 4.8%
    assert cuts[1] == cuts[2] == cuts[3]            # how extreme does not matter


def test_a_label_file_or_too_few_sessions_keep_the_percentile():
    rng = np.random.default_rng(2)
    raw = rng.gumbel(1.0, 0.4, (400, 2))
    config = load_config(None, [])
    labels = np.zeros(400, dtype=np.int8)
    labels[:4] = 1
    assert Combination.fit(config, raw, ["a", "b"], [2.0, 2.0], labels=labels,
                           normal=labels == 0).calibration.method == "percentile"
    few = Combination.fit(config, raw[:100], ["a", "b"], [2.0, 2.0]).calibration
    assert few.method == "percentile" and "too few for a knee" in few.warning
    with pytest.raises(ConfigError, match="ensemble.threshold must be one of"):
        load_config(None, ["ensemble.threshold=elbow"])


def _fake_run(tmp_path, records):
    (tmp_path / "config.yaml").write_text("detectors: [logbert]\ndata: {}\n")
    write_results(tmp_path / "anomaly_results.json", iter(records))
    return tmp_path


def _records():
    out = []
    for i in range(40):
        score = 5.0 if i < 4 else 0.1 * (i % 7)
        out.append({"file": "preprocessed_logs_2025-01-01.json", "session_id": i,
                    "service_name": "<script>alert(1)</script>" if i == 0 else "gateway",
                    "anomaly_score": score, "is_anomaly": score > 1.0, "threshold": 1.0,
                    "has_error": i in (0, 1, 10), "has_warn": False, "top_positions": []})
    return out


def test_a_label_free_report_marks_no_quality_criterion_met(tmp_path):
    run = _fake_run(tmp_path, _records())
    (run / "quality.json").write_text(json.dumps({
        "false_alarm_rate": 0.004, "caveat": "synthetic corruptions only",
        "per_kind": {"drop": {"n": 100, "recall": 0.91}}}))
    report, _ = build_report(run, with_plots=False)
    quality = {row["key"]: row for row in report["criteria"]
               if row["key"] in ("precision", "recall", "f1")}
    assert all(row["met"] is None and "has_error" in row["source"] for row in quality.values())
    assert quality["precision"]["value"] is not None        # shown, never judged
    facts = report["label_free"]
    assert facts["flagged"] == 4 and facts["flagged_with_error"] == 2
    assert facts["error_sessions_not_flagged"] == 1
    assert facts["injected"]["per_kind"]["drop"]["recall"] == 0.91
    paths = write_report(run)
    markdown = paths["markdown"].read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert "What holds without labels" in markdown
    assert "recall on injected &#x27;drop&#x27;" in paths["html"].read_text()


def test_infinite_scores_are_written_as_json_and_read_back(tmp_path):
    records = _records()
    records[0]["anomaly_score"] = float("inf")
    records[1]["anomaly_score"] = float("nan")
    path = tmp_path / "r.json"
    write_results(path, iter(records))
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text)                                          # standard JSON
    results = load_results(path)
    assert results.score[0] > 1e300


def test_a_threshold_that_is_not_a_number_is_refused():
    with pytest.raises(RadarError, match="finite"):
        RunScorer({"x": object()}, None, RunDir.for_config("r", ["x"]).path,
                  threshold=float("nan"))


def test_run_scorer_names_a_missing_calibration():
    from types import SimpleNamespace

    item = SimpleNamespace(vocab=SimpleNamespace(state_dict=dict), calibration=None,
                           checkpoint="ckpt.pt", detector=SimpleNamespace(name="logbert"),
                           model=torch.nn.Linear(1, 1))
    with pytest.raises(RadarError, match="holds no calibrated threshold"):
        RunScorer({"logbert": item}, None, RunDir.for_config("r", ["logbert"]).path)


@pytest.mark.parametrize("name", ["logbert", "deeplog", "lstm", "tcn"])
def test_every_builtin_detector_gives_per_session_losses_for_trimmed_training(name):
    from radar.config import build_section
    from radar.data.vocab import EventVocab
    from radar.detector import SessionBatch
    from radar.plugins import get_detector_class

    cls = get_detector_class(name)
    small = {"logbert": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "intermediate_size": 64, "max_position_embeddings": 64}}
    detector = cls(build_section(cls.config_class, small.get(name, {}), "model"))
    model = detector.build_model(EventVocab(np.arange(100, 112)), 30)
    batch = SessionBatch.from_lists([[5, 6, 7, 8], [9, 10], [5, 5, 5, 6, 7]])
    losses = detector.session_losses(model, batch)
    assert losses.shape == (3,) and torch.isfinite(losses).all()
    losses.max().backward()                   # a trimmed mean must train the model


def test_trimmed_training_leaves_out_the_worst_fitted_sessions(monkeypatch):
    from types import SimpleNamespace

    from radar.training.trainer import TRIM_START, Trainer

    seen = {}

    class Detector:
        def training_loss(self, model, batch):
            seen["plain"] = True
            return torch.tensor(1.0)

        def session_losses(self, model, batch):
            return torch.tensor([0.1, 0.2, 0.3, 9.0])

    trainer = SimpleNamespace(tc=SimpleNamespace(trim_fraction=0.25, total_steps=100),
                              step=0, detector=Detector(), model=None)
    assert Trainer._batch_loss(trainer, None) == 1.0 and seen["plain"]   # before TRIM_START
    trainer.step = int(TRIM_START * 100)
    assert Trainer._batch_loss(trainer, None).item() == pytest.approx(0.2)   # 9.0 left out


def test_a_calibration_from_an_older_algorithm_is_not_reused():
    """Checkpoints written before calibrations carried a version read as version 0, which
    never equals the current one, so `radar run` recalibrates the reused model."""
    from radar.scoring.calibration import CALIBRATION_VERSION, Calibration

    old = {"method": "tail", "threshold": 1.0, "percentile": 99.5, "n_sessions": 5,
           "data": "x", "score_name": "s"}
    assert Calibration.from_dict(old).version == 0 != CALIBRATION_VERSION
    fresh = Calibration("tail", 1.0, 99.5, 5, "x", "s")
    assert Calibration.from_dict(fresh.to_dict()).version == CALIBRATION_VERSION


def test_events_rarer_than_the_floor_stay_unseen():
    """An event logged by a handful of training sessions stays out of the vocabulary
    (scores as unseen) once data.min_event_share asks for more; by default it is known."""
    from radar.data.selection import build_vocab

    class Day:
        # 100 sessions of [7, 8]; event 9 in two of them
        lengths = np.array([2] * 98 + [3, 3])
        events = np.array([7, 8] * 98 + [7, 8, 9, 7, 8, 9])

    masks = [np.ones(100, dtype=bool)]
    assert 9 in build_vocab([Day()], masks).event_ids
    floored = build_vocab([Day()], masks, min_event_share=0.05)      # 5 of 100 sessions
    assert 9 not in floored.event_ids and {7, 8} <= set(floored.event_ids)
    with pytest.raises(Exception, match="min_event_share"):
        load_config(None, ["data.min_event_share=0.5"])
