"""Tests for the LogBERT detector plugin: model, masking, loss, scoring and a quality floor.

Everything runs on CPU with tiny models; the whole file takes well under a minute.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from radar_plugins.logbert.config import LogBERTConfig
from radar_plugins.logbert.detector import MAX_NLL, LogBERT
from radar_plugins.logbert.inputs import training_mask, with_specials
from sklearn.metrics import roc_auc_score

from radar.config import build_section
from radar.data.vocab import CLS, FIRST_EVENT, MASK, PAD, SEP, UNK, EventVocab
from radar.detector import SessionBatch, SessionScores
from radar.errors import ConfigError
from radar.testing import assert_registered_lazily

TINY = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64}
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128, "max_position_embeddings": 64, "hidden_dropout_prob": 0.0,
         "attention_probs_dropout_prob": 0.0}


make_batch = SessionBatch.from_lists


def build(config: dict, n_events: int = 12, seed: int = 0):
    torch.manual_seed(seed)
    detector = LogBERT(LogBERTConfig(**config))
    vocab = EventVocab(np.arange(100, 100 + n_events))   # raw ids 100.. -> indices 5..
    return detector, detector.build_model(vocab, 62)


# A small grammar of normal sessions over indices 5..16: a start event, 2-5 blocks
# drawn from three patterns, then a fixed two-event ending.
START, END = [5], [14, 15]
BLOCKS = [[6, 7, 8], [6, 9, 8], [10, 11, 12, 13]]


def normal_session(rng: np.random.Generator) -> list[int]:
    session = list(START)
    for _ in range(rng.integers(2, 6)):
        session += BLOCKS[rng.integers(len(BLOCKS))]
    return session + END


def anomalies(rng: np.random.Generator, n: int) -> list[list[int]]:
    """Shuffled order, an unseen (UNK) event, or a truncated session, in turn."""
    out = []
    for i in range(n):
        session = normal_session(rng)
        if i % 3 == 0:
            session = list(rng.permutation(session))
        elif i % 3 == 1:
            session.insert(int(rng.integers(1, len(session))), UNK)
        else:
            session = session[:int(rng.integers(2, len(session) - 2))]
        out.append([int(e) for e in session])
    return out


def train(detector, model, sessions, steps: int, lr: float, batch_size: int = 32, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        chosen = rng.choice(len(sessions), batch_size, replace=False)
        loss = detector.training_loss(model, make_batch([sessions[i] for i in chosen]))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.fixture(scope="module")
def trained():
    """A small LogBERT trained on the grammar (shared by the scoring tests)."""
    rng = np.random.default_rng(0)
    detector, model = build(SMALL)
    sessions = [normal_session(rng) for _ in range(512)]
    train(detector, model, sessions, steps=250, lr=3e-3)
    detector.on_epoch_end(model)
    return detector, model


def test_registered_through_entry_point_without_importing_torch():
    assert_registered_lazily("logbert", "logbert", LogBERT)


def test_model_builds_from_tiny_config():
    detector, model = build(TINY)
    assert model.mlm.bert.embeddings.word_embeddings.num_embeddings == FIRST_EVENT + 12
    assert model.mlm.config._attn_implementation == "sdpa"
    assert detector.vocab_ is not None and detector.window_ == 62
    state = model.state_dict()
    for name in ("center", "center_initialized", "running_mean", "running_count"):
        assert name in state
    model.gradient_checkpointing_enable()
    loss = detector.training_loss(model, make_batch([[5, 6, 7], [8, 9]]))
    loss.backward()
    assert torch.isfinite(loss)
    layer = model.mlm.bert.encoder.layer[0].attention.self.query.weight
    assert layer.grad is not None and layer.grad.abs().sum() > 0


def test_config_section_validates_keys_and_values():
    config = build_section(LogBERTConfig, {"hidden_size": 64, "num_attention_heads": 4}, "model")
    assert config.hidden_size == 64 and config.score == LogBERTConfig().score
    with pytest.raises(ConfigError, match="did you mean 'model.hidden_size'"):
        build_section(LogBERTConfig, {"hiden_size": 64}, "model")
    with pytest.raises(ConfigError, match="model.score must be one of"):
        LogBERTConfig(score="bogus")
    with pytest.raises(ConfigError, match="divisible"):
        LogBERTConfig(hidden_size=65)
    with pytest.raises(ConfigError, match="append_sep"):
        LogBERTConfig(append_sep=False, predict_end=True)
    for rate in (0.0, 1.0, float("nan")):
        with pytest.raises(ConfigError, match="mask_prob must be in"):
            LogBERTConfig(mask_prob=rate)


def test_the_plans_training_mask_prob_becomes_logberts_own():
    from radar.config import load_config

    config = load_config(None, ["training.mask_prob=0.3"])
    assert config.models["logbert"]["mask_prob"] == 0.3
    assert not hasattr(config.training, "mask_prob")
    own = load_config(None, ["training.mask_prob=0.3", "models.logbert.mask_prob=0.2"])
    assert own.models["logbert"]["mask_prob"] == 0.2


def test_position_overflow_and_vocab_cap_are_config_errors():
    detector = LogBERT(LogBERTConfig(**TINY))          # 64 positions: 62 events + CLS + SEP
    vocab = EventVocab(np.arange(10))
    detector.build_model(vocab, 62)                    # 62 events per window: fits
    with pytest.raises(ConfigError, match="data.max_seq_length.*model.max_position_embeddings"):
        detector.build_model(vocab, 63)
    with pytest.raises(ConfigError, match="model.vocab_size"):
        LogBERT(LogBERTConfig(**TINY, vocab_size=8)).build_model(vocab, 62)
    model = detector.build_model(vocab, 62)
    with pytest.raises(ConfigError, match="max_position_embeddings"):
        detector.score_sessions(model, make_batch([[5] * 63]))


def test_masking_never_touches_pad_cls_and_masks_every_session():
    lengths = torch.tensor([1, 3, 7, 12, 2] * 40)
    ids = torch.randint(FIRST_EVENT, 20, (len(lengths), 12))
    ids, attention, targets = with_specials(ids, lengths, append_sep=True, predict_end=True)
    assert (ids[:, 0] == CLS).all()
    assert (ids[torch.arange(len(lengths)), lengths + 1] == SEP).all()
    assert not targets[:, 0].any() and not (targets & ~attention).any()
    generator = torch.Generator().manual_seed(0)
    corrupted, chosen = training_mask(ids, targets, 0.15, 20, generator)
    assert not (chosen & ~targets).any()
    assert chosen.any(dim=1).all()                         # at least one per session
    assert (corrupted[~chosen] == ids[~chosen]).all()      # CLS, PAD, unchosen untouched
    assert (corrupted[~attention] == PAD).all()
    share_masked = float((corrupted[chosen] == MASK).float().mean())
    assert 0.65 < share_masked < 0.95                      # ~80% MASK
    _, _, events_only = with_specials(ids[:, 1:-1], lengths, append_sep=True)
    assert not (events_only & (ids == SEP)).any()            # SEP is a target only by choice


def test_loss_is_finite_and_decreases():
    detector, model = build(TINY)
    rng = np.random.default_rng(1)
    sessions = [normal_session(rng) for _ in range(128)]
    losses = train(detector, model, sessions, steps=50, lr=3e-3, batch_size=16)
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    assert set(detector.last_loss_parts) == {"mlm", "vhm"}


def test_running_centre_updates_and_refreshes():
    detector, model = build(SMALL)
    batch = make_batch([[5, 6, 7], [8, 9, 10, 11], [12]])
    model.train()
    ids, attention, _ = with_specials(batch.input_ids, batch.lengths, True, True)
    _, cls_hidden = model(ids, attention)
    assert int(model.running_count) == 3
    torch.testing.assert_close(model.running_mean, cls_hidden.detach().mean(dim=0))
    assert not bool(model.center_initialized)
    torch.testing.assert_close(model.center_for_loss(), model.running_mean)
    model(ids[:1], attention[:1])
    expected = (cls_hidden.detach().sum(dim=0) + cls_hidden[0].detach()) / 4
    torch.testing.assert_close(model.running_mean, expected)
    detector.on_epoch_end(model)
    assert bool(model.center_initialized) and int(model.running_count) == 0
    torch.testing.assert_close(model.center, expected)
    model.eval()
    model(ids, attention)                                  # eval passes do not accumulate
    assert int(model.running_count) == 0


def test_validation_loss_is_deterministic_and_leaves_state_alone():
    detector, model = build(TINY)
    batch = make_batch([[5, 6, 7, 8], [9, 10]])
    model.train()
    first = detector.validation_loss(model, batch)
    assert torch.equal(first, detector.validation_loss(model, batch))
    assert model.training and int(model.running_count) == 0


def test_scores_are_deterministic_and_independent_of_batch(trained):
    detector, model = trained
    rng = np.random.default_rng(5)
    sessions = [normal_session(rng) for _ in range(6)] + anomalies(rng, 3)
    model.train()
    together = detector.score_sessions(model, make_batch(sessions))
    assert model.training                                  # the caller's mode is restored
    assert isinstance(together, SessionScores) and together.score.shape == (9,)
    again = detector.score_sessions(model, make_batch(sessions))
    assert torch.equal(together.score, again.score)
    # Alone, or reversed next to a much longer session (more padding), nothing moves.
    longest = [5] + [6, 7, 8] * 15 + END
    mixed = detector.score_sessions(model, make_batch([longest] + sessions[::-1]))
    for i, session in enumerate(sessions):
        alone = detector.score_sessions(model, make_batch([session]))
        for key in ("miss_ratio", "mean_nll", "distance", "max_nll"):
            value = _get(together, key)[i]
            torch.testing.assert_close(_get(alone, key)[0], value, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(_get(mixed, key)[len(sessions) - i], value,
                                       atol=1e-4, rtol=1e-4)


def _get(scores: SessionScores, key: str) -> torch.Tensor:
    return scores.extras.get(key, scores.score)


def test_unseen_event_raises_score_and_is_explained(trained):
    detector, model = trained
    session = [5, 6, 7, 8, 10, 11, 12, 13, 14, 15]
    with_unk = session[:4] + [UNK] + session[5:]
    out = detector.score_sessions(model, make_batch([session, with_unk]))
    for key in ("miss_ratio", "mean_nll", "max_nll"):
        assert _get(out, key)[1] > _get(out, key)[0]
    assert float(_get(out, "max_nll")[1]) == pytest.approx(MAX_NLL)
    top = out.explanations[1][0]
    assert top == {"position": 4, "event_id": None, "kind": "unseen", "rank": None,
                   "probability": 0.0}
    assert len(out.explanations[0]) == detector.config.explain_top_k
    for item in out.explanations[0]:
        assert item["kind"] in ("event", "end") and item["rank"] >= 1
        if item["kind"] == "event":
            assert item["event_id"] == 100 + session[item["position"]] - FIRST_EVENT


def test_detects_shuffled_unseen_and_truncated_sessions(trained):
    detector, model = trained
    rng = np.random.default_rng(123)
    normal = [normal_session(rng) for _ in range(150)]
    abnormal = anomalies(rng, 150)
    out = detector.score_sessions(model, make_batch(normal + abnormal))
    labels = [0] * len(normal) + [1] * len(abnormal)
    assert roc_auc_score(labels, out.score.numpy()) > 0.9
    for kind in range(3):                                  # each anomaly type on its own
        picked = out.score[len(normal) + kind::3].numpy()
        auc = roc_auc_score([0] * len(normal) + [1] * len(picked),
                            np.concatenate([out.score[:len(normal)].numpy(), picked]))
        assert auc > 0.85, f"anomaly type {kind}: ROC-AUC {auc:.3f}"
