"""LogBERT's scoring shortcuts change no number: duplicates, the window cache, batching."""

from __future__ import annotations

import numpy as np
import torch
from radar_plugins.logbert.config import LogBERTConfig
from radar_plugins.logbert.detector import LogBERT, unwrap
from radar_plugins.logbert.inputs import scoring_mask, with_specials
from radar_plugins.logbert.window_stats import WindowStatsCache, window_stats

from radar.data.vocab import MASK, EventVocab
from radar.detector import SessionBatch
from radar.detector.keys import rank_and_nll

SIZE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "max_position_embeddings": 64, "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0}


def build(seed: int = 0):
    torch.manual_seed(seed)
    detector = LogBERT(LogBERTConfig(**SIZE))
    vocab = EventVocab(np.arange(100, 112))
    try:
        model = detector.build_model(vocab, 40)
    except TypeError:   # before #14 build_model took the vocabulary only
        model = detector.build_model(vocab)
    model.eval()
    return detector, model


def sessions(seed: int, n: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[int(e) for e in rng.integers(5, 17, rng.integers(1, 12))] for _ in range(n)]


def one_pass_at_a_time(model, ids, attention, targets, passes):
    """The plain definition: each pass's masked variant through the model on its own."""
    rank = torch.zeros(ids.shape, dtype=torch.long)
    nll = torch.zeros(ids.shape)
    distances = [[] for _ in range(ids.shape[0])]
    center = unwrap(model).center_for_loss()
    with torch.no_grad():
        for index in range(passes):
            masked = scoring_mask(targets, passes, index)
            for row in range(ids.shape[0]):
                if not masked[row].any():
                    continue
                variant = torch.where(masked[row], MASK, ids[row])[None]
                logits, cls = model(variant, attention[row][None], masked[row][None])
                rank[row, masked[row]], nll[row, masked[row]] = rank_and_nll(
                    logits, ids[row, masked[row]])
                distances[row].append(float((cls[0] - center).norm()))
    return rank, nll, torch.tensor([np.mean(d) for d in distances], dtype=torch.float32)


def test_batched_deduplicated_stats_match_one_pass_at_a_time():
    detector, model = build()
    batch = sessions(1, 9)
    batch = batch + batch[:4]          # duplicates inside the batch
    ids, attention, targets = with_specials(SessionBatch.from_lists(batch).input_ids,
                                            SessionBatch.from_lists(batch).lengths, True, True)
    passes = detector.config.scoring_passes
    with torch.no_grad():
        stats = window_stats(model, model, ids, attention, targets, passes, cache=None)
    rank, nll, distance = one_pass_at_a_time(model, ids, attention, targets, passes)
    assert torch.equal(stats.rank[targets], rank[targets])
    torch.testing.assert_close(stats.nll[targets], nll[targets], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats.distance, distance, atol=1e-5, rtol=1e-5)


def test_cached_scores_equal_fresh_ones_and_follow_the_model():
    detector, model = build()
    batches = [SessionBatch.from_lists(sessions(seed, 16)) for seed in (2, 3, 2)]
    first = [detector.score_sessions(model, batch) for batch in batches]
    cache = detector._window_cache
    assert cache.hits >= 16            # the third batch repeats the first
    fresh, _ = build()                 # same seed, same weights, empty cache
    for batch, scored in zip(batches, first):
        again = fresh.score_sessions(model, batch)
        torch.testing.assert_close(again.score, scored.score)
        for key, values in scored.extras.items():
            torch.testing.assert_close(again.extras[key], values)
        assert again.explanations == scored.explanations
    # An in-place update of the weights (an optimiser step) makes cached rows stale.
    with torch.no_grad():
        unwrap(model).mlm.cls.predictions.decoder.weight.mul_(1.5)
    changed = detector.score_sessions(model, batches[0])
    reference = build()[0].score_sessions(model, batches[0])
    torch.testing.assert_close(changed.score, reference.score)
    assert not torch.allclose(changed.score, first[0].score)


def test_cache_is_bounded_by_positions():
    cache = WindowStatsCache(max_positions=10, max_windows=100)
    model = torch.nn.Linear(2, 2)
    for key in range(6):
        cache.lookup(model, [bytes([key])])
        cache.store(bytes([key]), torch.zeros(4, dtype=torch.long), torch.zeros(4), 0.0)
    assert cache._positions <= 10 and len(cache._rows) == 2
    assert cache.lookup(model, [bytes([5])])[0] is not None
    assert cache.lookup(model, [bytes([0])])[0] is None
