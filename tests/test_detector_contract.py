"""The contract every registered detector keeps, checked through the real pipeline.

For each detector ``radar.plugins`` lists (none excluded): train with the shared
Trainer on small generated days (``train_from_config``, the path ``radar run``
takes, calibration included), then score a held-out day with planted anomalies
(an unseen event, a shuffled session, a truncated session) and check a quality
floor, deterministic and batch-independent scores, the explanation format, and
that a checkpoint round trip gives identical scores. Tiny sizes keep the whole
file well under a minute on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from toy import write_day

import radar.scoring.run as detect_module
from radar.checkpoint import load_checkpoint, save_checkpoint
from radar.config import build_config
from radar.data.dataset import SessionCorpus, window_length
from radar.data.selection import prepare_days, training_sets
from radar.detector import SessionBatch
from radar.pipeline import train_from_config
from radar.plugins import make_plugin_manager
from radar.results import EXPLAIN_KEYS, EXPLAIN_KINDS
from radar.rundir import best_checkpoint
from radar.scoring.run import load_trained, score_corpus
from radar.training.fit import fit_scoring

DETECTORS = sorted(make_plugin_manager().detectors())

# Small sizes for the built-in detectors; any other detector trains with its defaults.
TINY = {
    "logbert": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "intermediate_size": 128, "max_position_embeddings": 40,
                "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "deeplog": {"hidden_size": 32, "embedding_size": 16, "num_layers": 1},
    "lstm": {"hidden_size": 32, "embedding_size": 16},
    "tcn": {"channels": 32, "num_levels": 3},
}
STEPS, BATCH, MAX_SEQ = 200, 32, 40
AUC_FLOOR, KIND_AUC_FLOOR = 0.9, 0.8

# A grammar of normal sessions over raw ids 10..20: a start event, 2-5 blocks drawn
# from three patterns, then a fixed two-event ending. 99 is never seen in training.
START, END, UNSEEN = [10], [19, 20], 99
BLOCKS = [[11, 12, 13], [11, 14, 13], [15, 16, 17, 18]]
KINDS = ("unseen", "shuffled", "truncated")


def normal_session(rng: np.random.Generator) -> list[int]:
    session = list(START)
    for _ in range(rng.integers(2, 6)):
        session += BLOCKS[rng.integers(len(BLOCKS))]
    return session + END


def anomalous_session(rng: np.random.Generator, kind: str) -> list[int]:
    session = normal_session(rng)
    if kind == "unseen":
        session.insert(int(rng.integers(1, len(session))), UNSEEN)
    elif kind == "shuffled":
        session = [int(e) for e in rng.permutation(session)]
    else:
        session = session[:int(rng.integers(2, len(session) - 2))]
    return session


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine two
    OpenMP threads per process competing with another job ran 20-60x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    """Two training days, one validation day (all normal) and a test day with anomalies."""
    root = tmp_path_factory.mktemp("contract")
    rng = np.random.default_rng(0)
    for day, n in (("2025-01-01", 300), ("2025-01-02", 300), ("2025-01-03", 80)):
        write_day(root / "data" / f"preprocessed_logs_{day}.json",
                  [normal_session(rng) for _ in range(n)])
    sessions, labels, kinds = [], [], []
    for i in range(240):
        kind = KINDS[i % 3] if i % 2 else "normal"
        sessions.append(normal_session(rng) if kind == "normal" else anomalous_session(rng, kind))
        labels.append(int(kind != "normal"))
        kinds.append(kind)
    test_day = write_day(root / "test" / "preprocessed_logs_2025-01-04.json", sessions)
    return {"root": root, "test_day": test_day, "labels": np.array(labels),
            "kinds": np.array(kinds)}


def contract_config(name: str, root: Path):
    return build_config({
        "detectors": [name],
        "models": {name: TINY.get(name, {})},
        "training": {"batch_size": BATCH, "learning_rate": 3e-3, "total_steps": STEPS,
                     "num_epochs": 100, "warmup_ratio": 0.05, "log_interval": 50,
                     "save_interval": 0, "num_workers": 0, "seed": 0, "device": "cpu"},
        "data": {"preprocessed_dir": str(root / "data"), "cache_dir": str(root / "cache"),
                 "max_seq_length": MAX_SEQ, "val_fraction": 0.34},
        "detection": {"batch_size": 64},
        "output_dir": str(root / "runs" / name),
    })


@pytest.fixture(scope="module", params=DETECTORS)
def trained(request, workspace) -> dict:
    """Train and calibrate one detector through the pipeline; score the test day."""
    name, root = request.param, workspace["root"]
    config = contract_config(name, root)
    run = train_from_config(config, resume=None, workers=1, log=lambda message: None)
    (item,) = run.trained
    loaded = load_trained(item.checkpoint, torch.device("cpu"))
    test = prepare_days([workspace["test_day"]], config.data, workers=1,
                        log=lambda message: None)
    corpus = SessionCorpus(test.days, loaded.vocab, window_length(config.data.max_seq_length))
    results = score_corpus(loaded, corpus, batch_size=64, device=torch.device("cpu"))
    return {"name": name, "config": config, "item": item, "loaded": loaded,
            "corpus": corpus, "results": results, "root": root}


def test_every_builtin_detector_is_registered():
    assert {"logbert", "deeplog", "lstm", "tcn"} <= set(DETECTORS)


def test_trains_through_the_trainer_and_calibrates(trained):
    item = trained["item"]
    assert not item.result.interrupted
    if trained["loaded"].detector.trainable:
        assert item.result.step == STEPS
        assert item.result.last_train_loss is not None and np.isfinite(item.result.last_train_loss)
        assert item.result.best_val_loss is not None and np.isfinite(item.result.best_val_loss)
    else:    # fitted in closed form when calibrated: no steps, nothing to resume
        assert item.result.step == 0 and item.result.last_train_loss is None
    assert item.calibration is not None and np.isfinite(item.calibration.threshold)
    assert load_checkpoint(item.checkpoint)["detector"] == trained["name"]


def test_scores_separate_planted_anomalies(trained, workspace):
    scores, labels, kinds = trained["results"].score, workspace["labels"], workspace["kinds"]
    assert np.isfinite(scores).all()
    # An order-blind detector cannot see a reordering (the test below checks it does not)
    seen = KINDS if trained["loaded"].detector.order_aware else ("unseen", "truncated")
    visible = np.isin(kinds, ("normal", *seen))
    auc = roc_auc_score(labels[visible], scores[visible])
    assert auc > AUC_FLOOR, f"{trained['name']}: ROC-AUC {auc:.3f}"
    normal = kinds == "normal"
    for kind in seen:
        picked = kinds == kind
        kind_auc = roc_auc_score(np.r_[np.zeros(normal.sum()), np.ones(picked.sum())],
                                 np.r_[scores[normal], scores[picked]])
        assert kind_auc > KIND_AUC_FLOOR, f"{trained['name']}, {kind}: ROC-AUC {kind_auc:.3f}"


def test_order_blind_detectors_score_a_reordering_the_same(trained):
    loaded = trained["loaded"]
    if loaded.detector.order_aware:
        pytest.skip(f"{trained['name']} reads event order")
    session = [int(i) for i in trained["corpus"][np.arange(1)].input_ids[0]
               [:int(trained["corpus"][np.arange(1)].lengths[0])]]
    batch = SessionBatch.from_lists([session, session[::-1]])
    score = loaded.detector.score_sessions(loaded.model, batch).score
    torch.testing.assert_close(score[0], score[1])


def test_scores_are_deterministic_and_batch_independent(trained):
    loaded, corpus, first = trained["loaded"], trained["corpus"], trained["results"]
    cpu = torch.device("cpu")
    again = score_corpus(loaded, corpus, batch_size=64, device=cpu)
    assert np.array_equal(first.score, again.score)
    other = score_corpus(loaded, corpus, batch_size=7, device=cpu)
    np.testing.assert_allclose(other.score, first.score, rtol=1e-4, atol=1e-4)
    assert set(other.extras) == set(first.extras)


def test_the_run_scorer_scores_like_score_corpus(trained):
    """radar run / detect score through RunScorer, which finds the model's device itself
    (a fitted detector's model has buffers, no parameters)."""
    from radar.scoring.run import RunScorer

    loaded = trained["loaded"]
    scorer = RunScorer({trained["name"]: loaded}, None, loaded.checkpoint)
    outcome = scorer.score(trained["corpus"], batch_size=64)
    np.testing.assert_array_equal(outcome.score, trained["results"].score)


def test_token_capped_batches_score_the_same(trained, monkeypatch):
    """The token cap only regroups windows: a cap that splits every batch of long
    windows into small ones changes no score."""
    loaded, corpus, first = trained["loaded"], trained["corpus"], trained["results"]
    assert corpus.window_length.max() > 8
    monkeypatch.setattr(detect_module, "SCORING_TOKENS_PER_WINDOW", 1)   # 64 tokens a batch
    capped = score_corpus(loaded, corpus, batch_size=64, device=torch.device("cpu"))
    np.testing.assert_allclose(capped.score, first.score, rtol=1e-4, atol=1e-4)


def test_explanations_use_the_shared_format(trained):
    loaded, corpus = trained["loaded"], trained["corpus"]
    batch = corpus[np.arange(min(16, len(corpus)))]
    out = loaded.detector.score_sessions(loaded.model, batch)
    assert out.score.shape == (len(batch),)
    for name, values in out.extras.items():
        assert values.shape == (len(batch),), name
    if out.explanations is None:
        return
    assert len(out.explanations) == len(batch)
    for row, items in enumerate(out.explanations):
        for item in items:
            assert set(item) == set(EXPLAIN_KEYS)
            assert item["kind"] in EXPLAIN_KINDS
            assert 0 <= item["position"] <= int(batch.lengths[row])


def test_checkpoint_round_trip_gives_identical_scores(trained, tmp_path):
    """Fit scoring in memory, save, load into a fresh model: the scores do not move."""
    config, root = trained["config"], trained["root"]
    cpu = torch.device("cpu")
    checkpoint = best_checkpoint(root / "runs" / trained["name"])
    payload = load_checkpoint(checkpoint)
    in_memory = load_trained(checkpoint, cpu)
    days = prepare_days(sorted((root / "data").glob("*.json"))[:2], config.data, workers=1,
                        log=lambda message: None)
    run = training_sets(config.data, window_length(config.data.max_seq_length), days, None)
    fit_scoring(in_memory, run.train, batch_size=64, device=cpu, seed=0)
    expected = score_corpus(in_memory, trained["corpus"], batch_size=64, device=cpu)
    save_checkpoint(tmp_path / "copy.pt", {**payload, "model": in_memory.model.state_dict()})
    torch.manual_seed(123)                     # a different initialisation to overwrite
    fresh = load_trained(tmp_path / "copy.pt", cpu)
    got = score_corpus(fresh, trained["corpus"], batch_size=64, device=cpu)
    assert np.array_equal(got.score, expected.score)
    for name, values in expected.extras.items():
        np.testing.assert_array_equal(got.extras[name], values)


def test_validation_loss_is_deterministic(trained):
    loaded, corpus = trained["loaded"], trained["corpus"]
    batch = corpus[np.arange(min(32, len(corpus)))]
    loaded.model.train()
    try:
        first = loaded.detector.validation_loss(loaded.model, batch)
        assert torch.equal(first, loaded.detector.validation_loss(loaded.model, batch))
        assert torch.isfinite(first)
    finally:
        loaded.model.eval()
