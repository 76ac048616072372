"""The shared key-prediction machinery: session layout, NLL baseline, scores, explanations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from radar.data.vocab import CLS, FIRST_EVENT, MASK, PAD, SEP, UNK, EventVocab
from radar.detector import SessionBatch
from radar.detector.baseline import BASELINE_MIN_COUNT, MAX_NLL, NLLBaseline
from radar.detector.keys import CAP_TIE_STEP, explain_targets, key_scores
from radar.detector.nextkey import NextKeyConfig, NextKeyDetector, session_layout
from radar.errors import ConfigError

make_batch = SessionBatch.from_lists


class Bigram(nn.Module):
    """Predicts key p from key p - 1 alone: the smallest causal network."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, ids, targets):
        return self.table(ids[:, :-1][targets[:, 1:]])


class BigramDetector(NextKeyDetector):
    name = "bigram"

    def build_network(self, vocab_size):
        return Bigram(vocab_size)


def test_session_layout_adds_start_and_end_targets():
    batch = make_batch([[5, 6, 7], [8]])
    batch.input_ids[1, 2] = 9                      # a stray id past the length is cleared
    ids, targets = session_layout(batch.input_ids, batch.lengths)
    assert ids.tolist() == [[CLS, 5, 6, 7, SEP], [CLS, 8, SEP, PAD, PAD]]
    assert targets.tolist() == [[False, True, True, True, True],
                                [False, True, True, False, False]]


def test_baseline_is_the_median_for_frequent_indices_only():
    baseline = NLLBaseline(vocab_size=FIRST_EVENT + 2)
    frequent = torch.full((9,), FIRST_EVENT)
    baseline.add(frequent, torch.tensor([1.0, 1, 1, 2, 2, 2, 2, 9, 9]))
    baseline.add(torch.full((BASELINE_MIN_COUNT - 1,), FIRST_EVENT + 1),
                 torch.full((BASELINE_MIN_COUNT - 1,), 5.0))
    baseline.add(torch.full((10,), UNK), torch.full((10,), 3.0))
    values = baseline.baseline()
    assert values[FIRST_EVENT] == pytest.approx(2.0, abs=MAX_NLL / 256)
    assert values[FIRST_EVENT + 1] == 0.0          # too rare to trust
    assert values[UNK] == 0.0                      # unseen events always count in full


def test_key_scores_and_explanations():
    ids = torch.tensor([[CLS, 5, UNK, 6, SEP], [CLS, 5, SEP, PAD, PAD]])
    targets = ids.ne(PAD) & ids.ne(CLS)
    rank = torch.tensor([[0, 1, 50, 12, 2], [0, 1, 1, 0, 0]])
    nll = torch.tensor([[0.0, 0.5, 1.0, 4.0, 1.0], [0.0, 0.1, 0.2, 0.0, 0.0]])
    baseline = torch.zeros(10)
    baseline[6] = 3.5
    scores, raised = key_scores(ids, targets, rank, nll, baseline, top_g=9)
    assert scores["max_nll"].tolist() == pytest.approx([MAX_NLL, 0.2])
    assert scores["miss_count"].tolist() == [2.0, 0.0]   # UNK and rank 12 > 9
    assert scores["miss_ratio"].tolist() == pytest.approx([0.5, 0.0])
    assert scores["mean_nll"][1] == pytest.approx(0.15)
    # At the cap, ties break by the mean excess (0.5 + MAX_NLL + 0.5 + 1.0 over 4 targets).
    tie = CAP_TIE_STEP * (0.5 + MAX_NLL + 0.5 + 1.0) / 4 / MAX_NLL
    assert scores["max_excess_nll"].tolist() == pytest.approx([MAX_NLL + tie, 0.2])
    vocab = EventVocab([100, 200])                     # indices 5, 6
    explained = explain_targets(ids, targets, rank, raised, 2, vocab)
    assert explained[0][0] == {"position": 1, "event_id": None, "kind": "unseen", "rank": None,
                               "probability": 0.0}
    assert explained[0][1]["event_id"] == 200 and explained[0][1]["rank"] == 12
    assert [item["kind"] for item in explained[1]] == ["end", "event"]
    assert explained[1][0]["position"] == 1              # the end of a 1-event session


def test_config_errors_name_the_section():
    with pytest.raises(ConfigError, match="models.nextkey.score must be one of"):
        NextKeyConfig(score="bogus")
    with pytest.raises(ConfigError, match="models.nextkey.top_g"):
        NextKeyConfig(top_g=0)


def test_base_detector_trains_fits_and_scores():
    torch.manual_seed(0)
    detector = BigramDetector()
    model = detector.build_model(EventVocab(np.arange(100, 104)), 16)   # indices 5 .. 8
    normal = [[5, 6, 7, 8]] * 8 + [[5, 6, 7, 8, 5, 6, 7, 8]] * 8
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(60):
        loss = detector.training_loss(model, make_batch(normal))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(detector.validation_loss(model, make_batch(normal))) < 0.5
    detector.fit_scoring(model, [make_batch(normal)])
    assert model.event_nll_baseline[SEP] > 0             # ending after 8 is a coin flip
    out = detector.score_sessions(model, make_batch([[5, 6, 7, 8], [5, 7, 6, 8], [5, 6]]))
    assert out.score[0] < out.score[1] and out.score[0] < out.score[2]
    assert out.explanations[2][0]["kind"] == "end"       # truncated after 6
    assert set(out.extras) == {"max_nll", "mean_nll", "miss_ratio", "miss_count"}


def test_loss_never_rewards_pad_cls_or_mask():
    """A network that puts all its mass on a special still pays the full loss."""
    detector = BigramDetector()
    model = detector.build_model(EventVocab(np.arange(100, 104)), 16)
    with torch.no_grad():
        model.network.table.weight.zero_()
        model.network.table.weight[:, [PAD, CLS, MASK]] = 50.0
    loss = detector.training_loss(model, make_batch([[5, 6, 7]]))
    assert float(loss.detach()) == pytest.approx(np.log(9 - 3))   # uniform over 6 allowed


def test_sessions_at_the_nll_cap_rank_by_how_many_and_how_bad_their_surprises():
    """Every unseen event scores MAX_NLL; a threshold on that cap could flag none of them.
    More capped positions rank higher, then a worse rest of the session; below the cap
    nothing changes."""
    ids = torch.tensor([[CLS, UNK, 5, 5, SEP], [CLS, UNK, UNK, 5, SEP], [CLS, UNK, 6, 6, SEP],
                        [CLS, 5, 6, 5, SEP]])
    targets = ids.ne(PAD) & ids.ne(CLS)
    rank = torch.ones_like(ids)
    nll = torch.tensor([[0.0, 0.0, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.1, 0.1],
                        [0.0, 0.0, 3.0, 3.0, 0.1], [0.0, 0.1, 2.0, 0.1, 0.1]])
    scores, _ = key_scores(ids, targets, rank, nll, torch.zeros(10), top_g=9)
    one, two, one_worse, none = scores["max_excess_nll"].tolist()
    assert MAX_NLL < one < one_worse < two < MAX_NLL + 2 * CAP_TIE_STEP
    assert none == pytest.approx(2.0)
