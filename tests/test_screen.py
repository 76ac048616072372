"""data.contamination: screening the rarest-path sessions of the training days out of the
vocabulary and out of the threshold's calibration set (radar/data/screen.py)."""

from __future__ import annotations

import numpy as np
import pytest

from radar.config import DataConfig, load_config
from radar.data.screen import screen, screen_lines, session_rarity


class Day:
    """The arrays of a PreparedDay that screening reads."""

    def __init__(self, sessions: list[list[int]]):
        self.lengths = np.array([len(s) for s in sessions], dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)))
        self.events = np.array([e for s in sessions for e in s], dtype=np.int32)
        self.n_sessions = len(sessions)
        self.n_events = int(self.events.size)


def common(n: int) -> list[list[int]]:
    return [[1, 2, 3, 4] for _ in range(n)]


def test_rarity_is_the_support_of_the_rarest_transition():
    day = Day(common(6) + [[1, 3, 2, 4], [1, 2, 3], [1, 2, 3, 4, 4]])
    rarest, mean_log = session_rarity([day], [np.ones(day.n_sessions, dtype=bool)])[0]
    # [1,2,3,4]: start->1, 1->2, 2->3, 3->4, 4->end, each in 7 sessions (6 + the repeat)
    assert rarest[0] == 7
    assert rarest[6] == 1          # 1->3, 3->2 and 2->4 occur nowhere else
    assert rarest[7] == 1          # 3->end: cut short
    assert rarest[8] == 1          # 4->4: a repeated step
    assert mean_log[6] < mean_log[0]


def test_masks_count_only_their_sessions_and_unmasked_sessions_get_no_rarity():
    day = Day(common(3) + [[5, 6]])
    mask = np.array([True, True, True, False])
    rarest, mean_log = session_rarity([day], [mask])[0]
    assert list(rarest[:3]) == [3, 3, 3]
    assert rarest[3] == np.iinfo(np.int64).max and np.isinf(mean_log[3])


def test_supports_add_up_over_days_and_sessions_count_once():
    days = [Day([[1, 2, 1, 2]] * 2), Day([[1, 2]] * 3)]
    rarity = session_rarity(days, [np.ones(2, bool), np.ones(3, bool)])
    assert list(rarity[0][0]) == [2, 2]     # 2->1 only in day one's two sessions
    assert list(rarity[1][0]) == [5, 5, 5]  # start->1, 1->2 in all five; 2->end too


def test_screen_drops_the_rarest_share_of_each_group_deterministically():
    sessions = common(16) + [[1, 3, 2, 4], [4, 3, 2, 1], [1, 2], [1, 2, 3, 4, 9]]
    day = Day(sessions)
    train = np.zeros(20, dtype=bool)
    train[:10] = True
    train[16:18] = True                  # two odd sessions train
    held = ~train                        # the other six normal, two odd, are held out
    (known, calibration), reports = screen([day], [[train], [held]], 0.2)
    assert not known[0][16] and not known[0][17] and known[0][:10].all()
    # One of eight held out: of the two with a transition seen once, the one with two.
    assert calibration[0][18] and not calibration[0][19]
    assert calibration[0].sum() == 7
    assert reports[0].n_sessions == 12 and reports[0].n_screened == 2
    assert reports[1].n_sessions == 8 and reports[1].n_screened == 1
    again, _ = screen([day], [[train], [held]], 0.2)
    assert all((a == b).all() for a, b in zip(again[0] + again[1], known + calibration))
    lines = screen_lines(reports)
    assert len(lines) == 2 and "2 of 12 training sessions" in lines[0]


def test_no_share_screens_nothing_and_says_nothing():
    day = Day(common(5) + [[9, 9]])
    masks = [np.ones(6, dtype=bool)]
    (kept,), reports = screen([day], [masks], 0.0)
    assert kept[0].all() and reports[0].n_screened == 0
    assert screen_lines(reports) == []


def test_contamination_defaults_to_screening_unless_labels_cover_every_session(tmp_path):
    from radar.data.selection import DayData, fully_labelled

    assert DataConfig().screen_share(False) == pytest.approx(0.05)
    assert DataConfig(train_filter="no_error").screen_share(False) == pytest.approx(0.05)
    assert DataConfig(train_filter="labels").screen_share(True) == 0
    assert DataConfig(contamination=0.05).screen_share(True) == 0.05
    days = [Day(common(3)), Day(common(2))]
    data = DayData([tmp_path / "a", tmp_path / "b"], days)
    assert not fully_labelled(data)
    data.labels = [np.array([0, 1, 0]), np.array([0, 0])]
    assert fully_labelled(data)
    data.labels = [np.array([0, 1, 0]), np.array([0, -1])]      # a review: some unknown
    assert not fully_labelled(data)
    data.labels = [np.array([0, 1, 0]), None]
    assert not fully_labelled(data)
    with pytest.raises(Exception, match="contamination"):
        load_config(None, ["data.contamination=0.6"])


def test_screened_events_leave_the_vocabulary_but_their_sessions_still_train(tmp_path):
    """Through training_sets: an event only the rarest-path sessions log scores as unseen,
    those sessions stay in the training corpus, and screened held-out sessions are not
    calibration sessions."""
    from radar.data.selection import DayData, training_sets

    class Prepared(Day):
        def __init__(self, sessions):
            super().__init__(sessions)
            self.flags = np.zeros(self.n_sessions, np.uint8)
            self.service = np.zeros(self.n_sessions, np.uint16)
            self.services = ["svc"]

        def gather(self, rows, starts=None, max_len=512, pad=0):
            rows = np.asarray(rows)
            out = np.full((rows.size, max_len), pad, dtype=np.int64)
            take = np.minimum(self.lengths[rows], max_len)
            for i, r in enumerate(rows):
                out[i, :take[i]] = self.events[self.offsets[r]:self.offsets[r] + take[i]]
            return out[:, :max(1, int(take.max(initial=1)))], take

    # Event 99: 4 of the 910 training sessions (under ROUTINE_SHARE), all screened.
    days = [Prepared(common(450) + [[1, 2, 99, 3, 4]] * 2 + [[1, 3, 2, 4]] * 3)
            for _ in range(3)]
    data = DayData([tmp_path / f"d{i}.json" for i in range(3)], days, [None] * 3)
    config = DataConfig(calibration_fraction=0.3, calibration_split="days", contamination=0.1)
    sets = training_sets(config, 8, data, None)
    assert 99 not in sets.vocab.event_ids and {1, 2, 3, 4} <= set(sets.vocab.event_ids)
    assert sets.train.n_sessions == 910                 # two whole days, nobody left out
    assert sets.holdout.n_sessions == 455
    assert sets.calibration.n_sessions == 455 - 45      # 10% of 455 screened
    assert int(sets.holdout_normal.sum()) == 410
    assert [r.n_screened for r in sets.screen] == [91, 45]
    plain = training_sets(DataConfig(calibration_fraction=0.3, contamination=0), 8, data,
                          None)
    assert 99 in plain.vocab.event_ids and plain.calibration.n_sessions == 455


def test_an_event_interleaved_at_random_stays_known_though_its_sessions_are_screened(tmp_path):
    """A heartbeat line dropped into sessions at random points makes every transition
    around it rare, so the screen takes every session holding it; the event itself is
    logged by more sessions than the screen's cutoff and stays in the vocabulary."""
    from radar.data.screen import kept_events

    rng = np.random.default_rng(0)
    sessions = [list(range(10, 20)) for _ in range(400)]
    for i in range(0, 400, 10):          # 40 sessions, heartbeat 5 at a random place
        sessions[i].insert(int(rng.integers(1, 10)), 5)
    sessions[1] = sessions[1][:4] + [77] + sessions[1][4:]      # an event one session logs
    day = Day(sessions)
    masks = [np.ones(400, dtype=bool)]
    (kept,), _ = screen([day], [masks], 0.12)
    assert not kept[0][::10].any()                   # every heartbeat session screened
    assert not kept[0][1]
    known = kept_events([day], masks, kept)
    assert 5 in known and 77 not in known       # 77: 1 session, within 0.5% of 400


def test_big_days_are_screened_in_slices_with_the_same_result(monkeypatch):
    """A day is handled SLICE_SESSIONS sessions at a time (bounded memory); the rarity,
    the screened sessions and the events kept are those of one pass over the day."""
    from radar.data import screen as screen_module

    rng = np.random.default_rng(3)
    sessions = [list(rng.integers(1, 12, rng.integers(1, 9))) for _ in range(300)]
    days = [Day(sessions[:170]), Day(sessions[170:])]
    masks = [rng.random(day.n_sessions) < 0.8 for day in days]
    whole_rarity = session_rarity(days, masks)
    whole_screen = screen(days, [masks], 0.1)
    whole_kept = screen_module.kept_events(days, masks, whole_screen[0][0])
    monkeypatch.setattr(screen_module, "SLICE_SESSIONS", 7)
    sliced_rarity = session_rarity(days, masks)
    for (a_rare, a_log), (b_rare, b_log) in zip(whole_rarity, sliced_rarity):
        assert np.array_equal(a_rare, b_rare)
        np.testing.assert_allclose(a_log, b_log, rtol=1e-12)
    sliced_screen = screen(days, [masks], 0.1)
    assert all(np.array_equal(a, b) for a, b in zip(whole_screen[0][0], sliced_screen[0][0]))
    assert np.array_equal(whole_kept,
                          screen_module.kept_events(days, masks, sliced_screen[0][0]))
