"""Screening the sessions of the training days when nothing says which are anomalous.

Without labels every session of the training days trains and the held-out ones set
the threshold, the anomalies among them too. Two things then go wrong: the
vocabulary takes in the templates only anomalies log (so an unseen event no longer
scores as unseen), and a threshold fitted to held-out scores is pulled up by the
anomalies above the normal tail. ``data.contamination`` is the share of sessions
presumed anomalous; that share of the training sessions, and of the held-out ones,
with the *rarest transitions* is screened:

- events logged only by screened training sessions stay out of the vocabulary, so
  they score as unseen. The screened sessions still train: leaving them out was
  measured to cost more (rare normal paths and sessions with background lines went
  with them and then scored high) than it gained (docs/lab/benchmarks.md, "Label-free
  quality");
- screened held-out sessions do not set the threshold.

A transition is a pair of consecutive events of a session, with the session's start
and end as events of their own, so a missing step, steps out of order, a foreign or
unseen event, a session cut short and a repeated step all create one. Its support is
the number of sessions of the training days holding it. A session's rarity is the
support of its rarest transition (ties: the lower mean log-support of all its
transitions goes first). It needs no model (two passes over the prepared days, at most
SLICE_SESSIONS sessions of a day in memory at a time, counts bounded by the distinct
transitions), is the same for every detector of a run, and is blind to everything but
order: which is why it only decides what counts as known and what sets the threshold,
never a session's score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radar.data.cache import PreparedDay
from radar.data.dataset import row_slices


@dataclass
class ScreenReport:
    """What screening left out, for logs and the run summary."""

    share: float            # data.contamination as applied
    n_sessions: int         # training sessions before screening
    n_screened: int         # sessions left out
    max_support: int        # rarest-transition support of the last session left out

    def describe(self, what: str) -> str:
        return (f"{self.n_screened} of {self.n_sessions} {what} screened as presumed anomalous "
                f"(data.contamination {self.share:g}): their rarest transition occurs in at "
                f"most {self.max_support} session(s) of the training days")


def screen_lines(reports: list[ScreenReport]) -> list[str]:
    """What screening did to a run's sets (``TrainingSets.screen``), for its log."""
    if not reports or not reports[0].share:
        return []
    training, held_out = reports
    return [training.describe("training sessions") + "; events only they log stay out of "
            "the vocabulary (they train all the same)",
            held_out.describe("held-out sessions") + "; the threshold is set on the others"]


def _masked_events(day: PreparedDay, mask: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, lengths, events) of the masked sessions that log anything: their row
    numbers, their lengths and their events one after another, as int64."""
    rows = np.flatnonzero(mask & (day.lengths > 0))
    events = np.asarray(day.events)[np.repeat(mask, day.lengths)].astype(np.int64)
    return rows, day.lengths[rows], events


# Sessions of one day handled at once: a day of the user's largest size (1.6 GB, ~270k
# sessions) otherwise needs several arrays of all its events at once (523 MB of peak RSS
# for a day of 147k sessions, measured; docs/lab/benchmarks.md, Scale rehearsal).
SLICE_SESSIONS = 65_536


def _transitions(day: PreparedDay, mask: np.ndarray, width: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(session row, transition code) of every distinct transition of the masked sessions.

    Event ``e`` is ``e + 1``; 0 is the session's start and ``width - 1`` its end, so a
    code is ``first * width + second``."""
    rows, lengths, events = _masked_events(day, mask)
    if rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    # Each session's events with its start (0) in front and its end behind.
    flat = events + 1
    framed_len = lengths + 2
    framed = np.empty(int(framed_len.sum()), dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(framed_len)[:-1]))
    inner = np.ones(framed.size, dtype=bool)
    inner[first] = False
    inner[first + framed_len - 1] = False
    framed[first] = 0
    framed[first + framed_len - 1] = width - 1
    framed[inner] = flat
    owner = np.repeat(rows, framed_len)
    pair = np.ones(framed.size, dtype=bool)
    pair[first + framed_len - 1] = False            # a session's end starts no transition
    index = np.flatnonzero(pair)
    codes = framed[index] * width + framed[index + 1]
    owners = owner[index]
    order = np.lexsort((codes, owners))
    owners, codes = owners[order], codes[order]
    distinct = np.ones(codes.size, dtype=bool)
    distinct[1:] = (codes[1:] != codes[:-1]) | (owners[1:] != owners[:-1])
    return owners[distinct], codes[distinct]


# The most the screen may make unseen: events (rarest first) whose sessions add up to
# this share of the training sessions. Were they all normal, their sessions alone would
# spend the default false-alarm budget (0.5%) on the next day, no more; the rest stay
# known, routine ones first (a heartbeat interleaved at random makes the transitions
# around it rare, not itself).
UNSEEN_SHARE = 0.005


def _event_support(days: list[PreparedDay], masks: list[np.ndarray]) -> np.ndarray:
    """Per raw event id, the number of masked sessions logging it."""
    support = np.zeros(0, dtype=np.int64)
    for day, day_mask in zip(days, masks):
        for mask in row_slices(day_mask, SLICE_SESSIONS):
            rows, lengths, events = _masked_events(day, mask)
            if rows.size == 0:
                continue
            width = int(events.max()) + 1
            pairs = np.unique(np.repeat(rows, lengths) * width + events)
            counts = np.bincount(pairs % width)
            if counts.size > support.size:
                counts[:support.size] += support
                support = counts
            else:
                support[:counts.size] += counts
    return support


def kept_events(days: list[PreparedDay], masks: list[np.ndarray], kept: list[np.ndarray]
                ) -> np.ndarray:
    """Raw ids of the events that stay known although only screened sessions log them
    (``masks`` less ``kept``): all but the rarest, whose sessions add up to at most
    UNSEEN_SHARE of the ``masks`` sessions."""
    support = _event_support(days, masks)
    kept_support = _event_support(days, kept)
    kept_support = np.pad(kept_support, (0, max(0, support.size - kept_support.size)))
    only_screened = np.flatnonzero((support > 0) & (kept_support[:support.size] == 0))
    order = only_screened[np.argsort(support[only_screened], kind="stable")]
    allowance = UNSEEN_SHARE * sum(int(mask.sum()) for mask in masks)
    unseen = np.cumsum(support[order]) <= allowance
    return order[~unseen]


def _width(days: list[PreparedDay]) -> int:
    top = max((int(np.asarray(day.events).max()) for day in days if day.n_events), default=0)
    return top + 3          # start, every event id + 1, end


def _supports(days: list[PreparedDay], masks: list[np.ndarray], width: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct transition codes and the number of sessions holding each."""
    codes, counts = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    for day, day_mask in zip(days, masks):
        for mask in row_slices(day_mask, SLICE_SESSIONS):
            _, day_codes = _transitions(day, mask, width)
            day_unique, day_counts = np.unique(day_codes, return_counts=True)
            merged = np.concatenate((codes, day_unique))
            weights = np.concatenate((counts, day_counts))
            codes, inverse = np.unique(merged, return_inverse=True)
            counts = np.bincount(inverse, weights=weights).astype(np.int64)
    return codes, counts


def session_rarity(days: list[PreparedDay], masks: list[np.ndarray]
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per day, for every session: (support of its rarest transition, mean log-support of
    its transitions) among the masked sessions; sessions outside the mask get the largest
    int and +inf."""
    width = _width(days)
    codes, counts = _supports(days, masks, width)
    log_counts = np.log(np.maximum(counts, 1))
    out = []
    for day, day_mask in zip(days, masks):
        rarest = np.full(day.n_sessions, np.iinfo(np.int64).max, dtype=np.int64)
        total = np.zeros(day.n_sessions)
        n = np.zeros(day.n_sessions, dtype=np.int64)
        for mask in row_slices(day_mask, SLICE_SESSIONS):
            owners, day_codes = _transitions(day, mask, width)
            where = np.searchsorted(codes, day_codes)
            np.minimum.at(rarest, owners, counts[where])
            total += np.bincount(owners, weights=log_counts[where], minlength=day.n_sessions)
            n += np.bincount(owners, minlength=day.n_sessions)
        mean_log = np.where(n > 0, total / np.maximum(n, 1), np.inf)
        out.append((rarest, mean_log))
    return out


def screen(days: list[PreparedDay], groups: list[list[np.ndarray]], share: float
           ) -> tuple[list[list[np.ndarray]], list[ScreenReport]]:
    """Each group of per-day masks less the ``share`` of its sessions with the rarest
    transitions, supports counted over the sessions of all groups together."""
    reports = [ScreenReport(share, sum(int(m.sum()) for m in masks), 0, 0) for masks in groups]
    if all(int(np.floor(share * report.n_sessions)) == 0 for report in reports):
        return groups, reports
    union = [np.logical_or.reduce([masks[d] for masks in groups]) for d in range(len(days))]
    rarity = session_rarity(days, union)
    return ([_without_rarest(rarity, masks, share, report)
             for masks, report in zip(groups, reports)], reports)


def _without_rarest(rarity: list[tuple[np.ndarray, np.ndarray]], masks: list[np.ndarray],
                    share: float, report: ScreenReport) -> list[np.ndarray]:
    n_drop = int(np.floor(share * report.n_sessions))
    if n_drop == 0:
        return masks
    day_index = np.concatenate([np.full(int(mask.sum()), d) for d, mask in enumerate(masks)])
    row_index = np.concatenate([np.flatnonzero(mask) for mask in masks])
    rarest = np.concatenate([r[0][mask] for r, mask in zip(rarity, masks)])
    mean_log = np.concatenate([r[1][mask] for r, mask in zip(rarity, masks)])
    # Rarest first; ties by mean log-support, then by position (deterministic).
    order = np.lexsort((row_index, day_index, mean_log, rarest))[:n_drop]
    kept = [mask.copy() for mask in masks]
    for d in np.unique(day_index[order]):
        kept[d][row_index[order][day_index[order] == d]] = False
    report.n_screened, report.max_support = n_drop, int(rarest[order[-1]])
    return kept
