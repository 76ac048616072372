"""Injected recall: each corruption kind, the recall/false-alarm summary, a real detector."""

from __future__ import annotations

import numpy as np
import pytest

from radar.data.dataset import SessionCorpus
from radar.data.memory import MemoryDay
from radar.data.vocab import EventVocab
from radar.errors import RadarError
from radar.quality.inject import (
    KINDS,
    MIN_LENGTH,
    EventPool,
    corrupt,
    injected_recall,
)
from tests.toy import pattern_sessions

CYCLE = 6      # tests.toy.pattern_sessions: a repeating 1..6 cycle


def cycle_sessions(n: int, seed: int = 0) -> list[np.ndarray]:
    return [np.asarray(s, np.int64) for s in pattern_sessions(n, seed, max_len=12)]


def held_out_corpus(sequences, services, vocab_ids=range(1, 7), window=64) -> SessionCorpus:
    return SessionCorpus([MemoryDay(sequences, services)], EventVocab(list(vocab_ids)), window)


def transition_scorer(corpus: SessionCorpus) -> np.ndarray:
    """Toy detector: how many adjacent pairs break the 1..6 cycle (windows = sessions)."""
    batch = corpus[np.arange(len(corpus))]
    raw = corpus.vocab.decode(batch.input_ids.numpy())
    broken = np.zeros(len(corpus))
    for i, length in enumerate(batch.lengths.tolist()):
        seq = raw[i, :length]
        broken[i] = np.sum(seq[1:] != seq[:-1] % CYCLE + 1)
    return broken


def test_each_kind_makes_the_change_it_names():
    rng = np.random.default_rng(0)
    sequences = cycle_sessions(200)
    services = ["a" if i % 2 else "b" for i in range(200)]
    sequences[0] = np.asarray([7, 8, 9, 10, 11])      # only service b holds 7..11
    pool = EventPool.from_sessions(sequences, services)
    out = corrupt(sequences, services, KINDS, rng, event_pool=pool)
    assert set(out.kinds) == set(KINDS) and len(out.kinds) == len(out.sequences)
    for copy, kind, i in zip(out.sequences, out.kinds, out.source):
        seq = sequences[i]
        assert seq.size >= MIN_LENGTH[kind] and not np.array_equal(copy, seq)
        if kind == "drop":
            assert copy.size == seq.size - 1 and copy[0] == seq[0] and copy[-1] == seq[-1]
            assert any(np.array_equal(np.delete(seq, j), copy) for j in range(1, seq.size - 1))
        elif kind == "swap":
            differ = np.flatnonzero(copy != seq)
            assert differ.size == 2 and differ[1] == differ[0] + 1
            assert sorted(copy.tolist()) == sorted(seq.tolist())
        elif kind == "repeat":
            extra = copy.size - seq.size
            assert 1 <= extra <= 3
            at = next(j for j in range(copy.size) if j == seq.size or copy[j] != seq[j])
            assert np.array_equal(np.delete(copy, range(at, at + extra)), seq)
            assert len(set(copy[at - 1:at + extra].tolist())) == 1     # one run
        elif kind == "truncate":
            assert np.array_equal(copy, seq[:copy.size])
            assert 0.3 * seq.size - 1 <= copy.size <= 0.7 * seq.size + 1
        else:
            (at,) = [j for j in range(copy.size) if copy[j] not in seq]
            assert 1 <= at < copy.size - 1 and np.array_equal(np.delete(copy, at), seq)
            if services[i] == "a":
                assert copy[at] in {7, 8, 9, 10, 11}    # from the other service


def test_short_and_unswappable_sessions_get_no_copy():
    pool = EventPool.from_sessions([np.arange(10)], ["x"])
    sequences = [np.asarray([5, 5, 5, 5]), np.asarray([1, 2])]
    out = corrupt(sequences, ["x", "x"], KINDS, np.random.default_rng(0), event_pool=pool)
    made = list(zip(out.source.tolist(), out.kinds))
    assert (0, "swap") not in made and (0, "drop") in made and (0, "truncate") in made
    assert [kind for i, kind in made if i == 1] == ["swap", "repeat", "foreign"]
    assert out.ineligible == {"drop": 1, "swap": 1, "repeat": 0, "truncate": 1, "foreign": 0}
    with pytest.raises(RadarError, match="unknown corruption kind.*available: drop"):
        corrupt(sequences, ["x", "x"], ["shuffle"], np.random.default_rng(0), event_pool=pool)


def test_corruptions_are_deterministic_given_the_seed():
    sequences, services = cycle_sessions(50), ["a"] * 50
    pool = EventPool.from_sessions(sequences, services)
    runs = [corrupt(sequences, services, KINDS, np.random.default_rng(seed), event_pool=pool)
            for seed in (3, 3, 4)]
    same = [np.array_equal(a, b) for a, b in zip(runs[0].sequences, runs[1].sequences)]
    assert all(same) and runs[0].kinds == runs[1].kinds
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0].sequences, runs[2].sequences))


def test_recall_per_kind_and_service_with_a_toy_scorer():
    sequences = cycle_sessions(300)
    services = ["gateway" if i % 3 else "research" for i in range(300)]
    corpus = held_out_corpus(sequences, services, vocab_ids=range(1, 9))
    # Events 7 and 8 come from elsewhere in the system (known to the vocabulary).
    pool = EventPool.from_sessions([*sequences, np.asarray([7, 8])], [*services, "elsewhere"])
    report = injected_recall(transition_scorer, corpus, 0.5, seed=1, event_pool=pool)
    assert report["sessions_sampled"] == 300 and report["false_alarm_rate"] == 0.0
    kinds = report["per_kind"]
    # Every kind but truncate breaks a transition of the cycle; a truncated cycle is a
    # shorter normal session, which the toy scorer (rightly, by its rule) never flags.
    for kind in ("drop", "swap", "repeat", "foreign"):
        assert kinds[kind]["recall"] == 1.0 and kinds[kind]["n"] > 200, kind
    assert kinds["truncate"]["recall"] == 0.0 and kinds["truncate"]["n_same_as_untouched"] > 0
    assert kinds["truncate"]["n_ineligible"] == sum(len(s) < 4 for s in sequences) > 0
    total = sum(block["n"] for block in kinds.values())
    assert report["n"] == total == sum(s["n"] for s in report["per_service"].values())
    assert report["recall"] == pytest.approx(
        sum(block["detected"] for block in kinds.values()) / total)
    assert set(report["per_service"]) == {"gateway", "research"}
    assert report["per_service"]["research"]["per_kind"]["truncate"]["recall"] == 0.0
    assert report["per_service"]["research"]["per_kind"]["swap"]["recall"] == 1.0
    assert "does not measure" in report["caveat"]
    assert injected_recall(transition_scorer, corpus, 0.5, max_sessions=25
                           )["sessions_sampled"] == 25


def test_copies_of_already_flagged_sessions_do_not_count():
    sequences = cycle_sessions(40)
    sequences[0] = np.asarray([1, 3, 5, 2, 4, 6])           # breaks the cycle untouched
    corpus = held_out_corpus(sequences, ["a"] * 40)
    report = injected_recall(transition_scorer, corpus, 0.5, kinds=["swap"], seed=0)
    assert report["false_alarm_rate"] == pytest.approx(1 / 40)
    assert report["n_copies_of_flagged_sessions"] == 1 and report["n"] == 39


def test_only_the_sessions_the_corpus_selects_are_sampled():
    sequences = cycle_sessions(40)
    broken = [i for i in range(40) if i % 4 == 0]
    for i in broken:
        sequences[i] = sequences[i][::-1].copy()             # flagged if ever sampled
    mask = np.ones(40, bool)
    mask[broken] = False
    corpus = SessionCorpus([MemoryDay(sequences, ["a"] * 40)], EventVocab(range(1, 7)), 64,
                           [mask])
    report = injected_recall(transition_scorer, corpus, 0.5, kinds=["drop"])
    assert report["sessions_sampled"] == 30 and report["false_alarm_rate"] == 0.0


def test_a_scorer_returning_the_wrong_shape_is_named():
    corpus = held_out_corpus(cycle_sessions(10), ["a"] * 10)
    with pytest.raises(RadarError, match="one per session"):
        injected_recall(lambda c: np.zeros(3), corpus, 0.5)


def test_a_trained_detector_catches_corruptions_it_was_not_trained_on():
    """DeepLog, trained briefly on the plugin grammar, scored through a SessionCorpus."""
    import torch
    from radar_plugins.deeplog.config import DeepLogConfig
    from radar_plugins.deeplog.detector import DeepLog

    from radar.testing import BLOCKS, build_small, train_and_score_planted

    detector, model = build_small(DeepLog, DeepLogConfig(embedding_size=16, hidden_size=32,
                                                         num_layers=1))
    train_and_score_planted(detector, model, steps=120)       # trains in place
    model.eval()

    def score(corpus: SessionCorpus) -> np.ndarray:
        with torch.no_grad():
            return detector.score_sessions(model, corpus[np.arange(len(corpus))]).score.numpy()

    # Held-out sessions in raw ids (index + 95): service "a" uses the first two blocks,
    # "b" the third, so each has events the other never holds.
    rng = np.random.default_rng(5)
    sequences, services = [], []
    for i in range(120):
        service, blocks = ("a", BLOCKS[:2]) if i % 2 else ("b", BLOCKS[2:])
        body = [e for _ in range(rng.integers(2, 6)) for e in blocks[rng.integers(len(blocks))]]
        sequences.append(np.asarray([5, *body, 14, 15]) + 95)
        services.append(service)
    corpus = SessionCorpus([MemoryDay(sequences, services)], EventVocab(np.arange(100, 112)),
                           64)
    normal = score(corpus)
    threshold = float(np.max(normal))
    report = injected_recall(score, corpus, threshold, seed=0)
    assert report["false_alarm_rate"] == 0.0
    kinds = report["per_kind"]
    # The grammar is strict, so each kind breaks it; measured 1.0 for every kind.
    assert all(block["recall"] >= 0.9 and block["n"] >= 100 for block in kinds.values()), kinds
    assert report["per_service"]["a"]["per_kind"]["foreign"]["n"] == 60
