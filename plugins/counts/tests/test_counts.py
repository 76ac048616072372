"""Tests for the count-vector plugin (``pca``): registration, config, the fitted subspace,
order blindness, explanations and a quality floor on planted anomalies.

The contract test (tests/test_detector_contract.py) fits it through the pipeline.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from radar_plugins.counts.config import PCAConfig
from radar_plugins.counts.detector import EventCountPCA
from radar_plugins.counts.model import event_counts
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.data.vocab import UNK
from radar.detector import SessionBatch
from radar.errors import ConfigError, RadarError
from radar.testing import (
    assert_batch_independent,
    assert_registered_lazily,
    build_small,
    normal_session,
)

make_batch = SessionBatch.from_lists


def fitted(sessions, **config):
    detector, model = build_small(EventCountPCA, PCAConfig(**config))
    detector.fit_scoring(model, [make_batch(sessions[:128]), make_batch(sessions[128:])])
    return detector, model


def grammar(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [normal_session(rng) for _ in range(n)]


def test_registered_through_entry_point_without_importing_torch():
    assert_registered_lazily("counts", "pca", EventCountPCA)


def test_config_checks_name_the_key():
    assert PCAConfig().variance == 0.95 and PCAConfig().weighting == "tfidf"
    with pytest.raises(ConfigError, match="models.pca.variance"):
        PCAConfig(variance=1.0)
    with pytest.raises(ConfigError, match="models.pca.weighting must be one of"):
        PCAConfig(weighting="bm25")
    with pytest.raises(ConfigError, match="did you mean 'models.pca.variance'"):
        build_section(PCAConfig, {"varience": 0.9}, "models.pca")


def test_counts_ignore_padding_and_count_repeats():
    batch = make_batch([[5, 6, 6], [7]])
    counts = event_counts(batch, 10)
    assert counts[0, 6] == 2 and counts[0, 5] == 1 and counts[1, 7] == 1
    assert counts.sum(dim=1).tolist() == [3.0, 1.0] and counts[:, 0].sum() == 0


def test_scores_are_the_squared_residual_off_sklearns_principal_subspace():
    sessions = grammar(256)
    detector, model = fitted(sessions, weighting="none")
    counts = event_counts(make_batch(sessions),
                          len(detector.vocab_)).numpy().astype(np.float64)
    k = int(model.n_components)
    reference = PCA(n_components=k).fit(counts)
    assert np.cumsum(reference.explained_variance_ratio_)[-1] >= 0.95
    centred = counts - reference.mean_
    expected = ((centred - centred @ reference.components_.T @ reference.components_) ** 2).sum(1)
    got = detector.score_sessions(model, make_batch(sessions)).score.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_order_blind_and_batch_independent():
    detector, model = fitted(grammar(256))
    session = grammar(1, seed=3)[0]
    scores = detector.score_sessions(model, make_batch([session, session[::-1]])).score
    assert scores[0] == pytest.approx(float(scores[1]), rel=1e-6)
    assert_batch_independent(detector, model)


def test_separates_unseen_extra_and_missing_events():
    """Unseen events, a duplicated block and a dropped block all move the count vector off
    the normal subspace; a shuffle does not (order-blind)."""
    detector, model = fitted(grammar(256))
    normal = grammar(60, seed=1)
    unseen = [s[:3] + [UNK] + s[3:] for s in normal[:20]]
    extra = [s + [6, 9, 8, 6, 9, 8] for s in normal[20:40]]
    missing = [s[:-2] for s in normal[40:]]
    scores = detector.score_sessions(model, make_batch(normal + unseen + extra + missing)).score
    auc = roc_auc_score([0] * 60 + [1] * 60, scores.numpy())
    assert auc > 0.9, auc


def test_explanations_point_at_the_unseen_event():
    detector, model = fitted(grammar(256))
    session = grammar(1, seed=5)[0]
    session = session[:4] + [UNK] + session[4:]
    out = detector.score_sessions(model, make_batch([session]))
    top = out.explanations[0][0]
    assert top == {"position": 4, "event_id": None, "kind": "unseen", "rank": None,
                   "probability": None}
    assert all(item["kind"] in ("event", "unseen") for item in out.explanations[0])
    detector.config.explain_top_k = 0
    assert detector.score_sessions(model, make_batch([session])).explanations is None


def test_scoring_before_fitting_is_an_error_not_zeros():
    detector, model = build_small(EventCountPCA, PCAConfig())
    with pytest.raises(RadarError, match="before it was fitted"):
        detector.score_sessions(model, make_batch([[5, 6]]))
    assert detector.validation_loss(model, make_batch([[5, 6]])) == 0
    with pytest.raises(RadarError, match="fitted in closed form"):
        detector.training_loss(model, make_batch([[5, 6]]))


def test_fit_survives_a_constant_corpus():
    detector, model = fitted([[5, 6, 7]] * 200)
    assert int(model.n_components) == 0
    scores = detector.score_sessions(model, make_batch([[5, 6, 7], [5, 6, 7, 7]])).score
    assert scores[0] == pytest.approx(0.0, abs=1e-9) and scores[1] > 0
    assert torch.isfinite(scores).all()
