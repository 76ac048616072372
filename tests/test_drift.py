"""Drift: a new log line many sessions of a day carry is reported and scored around, not
flagged in every session; a rare unseen event stays an anomaly signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toy import pattern_sessions, write_day

from radar.config import DataConfig, DetectionConfig
from radar.data.dataset import SessionCorpus
from radar.data.selection import prepare_days
from radar.data.vocab import UNK, EventVocab
from radar.errors import ConfigError
from radar.scoring.drift import MIN_SESSIONS, DriftFilteredDay, find_drift
from radar.scoring.run import LoadedDetector, score_corpus

NEW, RARE = 77, 88


def prepared(tmp_path, sessions):
    path = write_day(tmp_path / "data" / "preprocessed_logs_2025-03-01.json", sessions)
    data = prepare_days([path], DataConfig(cache_dir=str(tmp_path / "cache")), workers=1,
                        log=lambda message: None)
    return data.days[0]


def release_day(n: int = 400, release_at: int = 200, every: int = 4):
    """Sessions of the 1..6 cycle; from ``release_at`` on every ``every``-th logs NEW at
    position 2; five sessions log RARE."""
    sessions = pattern_sessions(n, seed=3)
    for i in range(release_at, n, every):
        sessions[i] = sessions[i][:2] + [NEW] + sessions[i][2:]
    for i in (10, 50, 90, 130, 170):
        if i < release_at:
            sessions[i] = sessions[i] + [RARE]
    return sessions


VOCAB = EventVocab(np.arange(1, 7))


def test_a_common_new_event_is_drift_and_a_rare_one_is_not(tmp_path):
    day = prepared(tmp_path, release_day())
    (event,) = find_drift(day, VOCAB, "day.json", 0.05)
    assert event.event_id == NEW and event.sessions == 50 and event.first_session_id == 200
    # Its share counts from its first appearance on: 50 of the last 200 sessions.
    assert event.share == pytest.approx(0.25)
    assert "never seen in training" in event.describe() and "day.json" in event.describe()
    assert find_drift(day, VOCAB, "day.json", 0.0) == []            # 0 turns it off
    assert find_drift(day, VOCAB, "day.json", 0.3) == []            # not that common
    assert find_drift(day, EventVocab(np.r_[np.arange(1, 7), NEW]), "d", 0.05) == []


def test_too_few_sessions_are_never_drift_whatever_their_share(tmp_path):
    sessions = release_day(n=2 * MIN_SESSIONS, release_at=MIN_SESSIONS + 2, every=1)
    day = prepared(tmp_path, sessions)
    assert find_drift(day, VOCAB, "d", 0.05) == []


def test_the_filtered_day_reads_sessions_without_the_drift_event(tmp_path):
    sessions = release_day()
    day = prepared(tmp_path, sessions)
    filtered = DriftFilteredDay(day, [NEW])
    expected = [[e for e in s if e != NEW] for s in sessions]
    np.testing.assert_array_equal(filtered.lengths, [len(s) for s in expected])
    rows = np.array([0, 200, 204, 399])
    raw, take = filtered.gather(rows, np.array([0, 1, 0, 2]), max_len=3)
    for i, (row, start) in enumerate(zip(rows, [0, 1, 0, 2])):
        want = expected[row][start:start + 3]
        assert take[i] == len(want) and raw[i, :take[i]].tolist() == want
    assert filtered.session_ids is day.session_ids          # everything else is the day's
    # Position 2 of a filtered session 204 is its 4th event as logged (NEW sat at 2).
    mapped = filtered.original_positions(np.array([204, 0]),
                                         np.array([[2.0, 1.0], [np.nan, 0.0]]))
    assert mapped[0].tolist() == [3.0, 1.0] and np.isnan(mapped[1, 0]) and mapped[1, 1] == 0


def test_a_session_of_drift_events_only_keeps_them(tmp_path):
    sessions = release_day()
    sessions[300] = [NEW, NEW]
    filtered = DriftFilteredDay(prepared(tmp_path, sessions), [NEW])
    raw, take = filtered.gather([300], None, 10)
    assert raw[0, :take[0]].tolist() == [NEW, NEW]


class CountsUnseen:
    """A stand-in detector: a session's score is how many unseen events it holds, and the
    explanation points at the first one."""

    explain_top_k = 1

    def score_sessions(self, model, batch):
        from radar.detector import SessionScores

        unseen = (batch.input_ids == UNK) & batch.attention_mask
        first = torch.where(unseen.any(1), unseen.int().argmax(1), torch.zeros_like(batch.lengths))
        explanations = [[{"position": int(p), "event_id": None, "kind": "unseen",
                          "rank": None, "probability": None}] for p in first]
        return SessionScores(unseen.sum(1).float(), explanations=explanations)


def test_scoring_a_drifted_day_flags_only_the_rare_unseen_event(tmp_path):
    """Scored as logged, every session with the new line scores like the rare event; read
    without it, only the five RARE sessions do, and their explanation positions are
    the positions as logged."""
    sessions = release_day()
    day = prepared(tmp_path, sessions)
    loaded = LoadedDetector(CountsUnseen(), None, VOCAB, None, None, None, {})
    as_logged = score_corpus(loaded, SessionCorpus([day], VOCAB, 20), batch_size=32,
                             device=torch.device("cpu"))
    assert (as_logged.score > 0).sum() == 55
    filtered = DriftFilteredDay(day, [NEW])
    corpus = SessionCorpus([filtered], VOCAB, 20)
    got = score_corpus(loaded, corpus, batch_size=32, device=torch.device("cpu"))
    assert np.flatnonzero(got.score > 0).tolist() == [10, 50, 90, 130, 170]
    assert got.explain[10, 0, 0] == len(sessions[10]) - 1      # RARE, the last event


def test_drift_share_is_checked():
    assert DetectionConfig().drift_share == 0.05
    with pytest.raises(ConfigError, match="detection.drift_share"):
        DetectionConfig(drift_share=1.5)
