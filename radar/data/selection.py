"""Which sessions a run learns from, calibrates on and reports on.

The training days are split three ways, per session and deterministically:

- **training** sessions (``data.train_filter`` chooses which sessions count as
  normal: all of them by default when there is no label file, since neither
  ``has_error`` nor anything else tells the anomalies apart; the sessions a label
  file marks normal with one);
- **held-out** sessions, never trained on (``data.calibration_fraction``), on which
  thresholds and ensemble normalisers are set: by default whole days (the newest
  training days, ``data.calibration_split: days``), so a threshold is set on days the
  model has not seen, as it will be used on the next day; a random share of every
  day's sessions with ``sessions`` (or fewer than three training days). Of these, the
  *calibration* sessions are the ones the training filter calls normal;
- the validation days (the newest days of the split) are only scored and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radar.console import data_text
from radar.data.cache import ERROR_BIT, WARN_BIT, PreparedDay, cache_dir_for, open_prepared
from radar.data.cache_build import prepare_files
from radar.data.dataset import SessionCorpus
from radar.data.files import find_day_files
from radar.data.labels import LabelTable, read_labels
from radar.data.screen import ScreenReport, kept_events, screen
from radar.data.split import split_files, write_split
from radar.data.vocab import EventVocab
from radar.errors import RadarError

Log = Callable[[str], None]


@dataclass
class DayData:
    """Prepared days plus what joins them back to the source files and labels."""

    files: list[Path]
    days: list[PreparedDay]
    labels: list[np.ndarray | None] = field(default_factory=list)   # per day: 1/0/-1

    @property
    def names(self) -> list[str]:
        return [path.name for path in self.files]

    @property
    def session_ids(self) -> list[np.ndarray]:
        return [np.asarray(day.session_ids) for day in self.days]

    @property
    def session_keys(self) -> list[list[str] | None]:
        return [day.session_keys for day in self.days]

    @property
    def folder(self) -> Path | None:
        """The folder of the day files (None without any)."""
        return self.files[0].parent if self.files else None

    @property
    def has_labels(self) -> bool:
        return any(labels is not None for labels in self.labels)


def load_label_table(path: str | None) -> LabelTable | None:
    return read_labels(path) if path else None


def prepare_days(files: list[Path], data_config, *, workers: int, log: Log,
                 labels: LabelTable | None = None) -> DayData:
    """Convert (or reuse) the prepared cache of ``files`` and open it."""
    results = prepare_files(files, data_config.cache_dir, workers=workers,
                            max_seq_length=data_config.max_seq_length,
                            strict=data_config.strict)
    done = sum(1 for result in results if not result.skipped)
    log(f"prepared {done} file(s), reused {len(results) - done} from "
        f"{data_text(data_config.cache_dir)}")
    for result in results:   # damage is never silent: say what was kept and what was not
        name = data_text(Path(result.path).name)
        if result.truncated is not None:
            log(f"[yellow]warning:[/yellow] {data_text(result.truncated)}; using the {result.n_sessions} "
                f"sessions before the damage in {name}")
        if result.report.n_bad:
            kinds = ", ".join(f"{kind} {n}" for kind, n in result.report.bad_counts.items())
            log(f"[yellow]warning:[/yellow] {name}: skipped {result.report.n_bad} bad "
                f"record(s) ({kinds}); `radar validate` lists them")
    days = [open_prepared(cache_dir_for(path, data_config.cache_dir)) for path in files]
    data = DayData(list(files), days)
    data.labels = [labels.lookup(path.name, np.asarray(day.session_ids), day.session_keys)
                   if labels else None for path, day in zip(files, days)]
    return data


def split_and_prepare(data_config, output_dir: Path, *, workers: int,
                      labels: LabelTable | None, log: Log) -> tuple[DayData, DayData]:
    """Find the day files, split them by date (written into the run folder), prepare both."""
    files = find_day_files(Path(data_config.preprocessed_dir), data_config.file_pattern)
    train_files, val_files = split_files(files, val_fraction=data_config.val_fraction,
                                         method=data_config.split, seed=data_config.split_seed,
                                         limit_files=data_config.limit_files)
    write_split(train_files, val_files, output_dir)
    log(f"{len(train_files)} training day(s), {len(val_files)} validation day(s)")
    train = prepare_days(train_files, data_config, workers=workers, log=log, labels=labels)
    val = prepare_days(val_files, data_config, workers=workers, log=log, labels=labels)
    return train, val


def normal_mask(day: PreparedDay, labels: np.ndarray | None, train_filter: str) -> np.ndarray:
    """Sessions treated as normal for training.

    ``labels``: every session the label file does not mark anomalous. Sessions it does
    not cover count as normal, so a file of a few dozen reviewed sessions (``radar
    review``) removes the anomalies found so far without shrinking the training set.
    """
    flags = np.asarray(day.flags)
    if train_filter == "labels":
        if labels is None:
            raise RadarError("data.train_filter=labels needs a label file (--labels FILE)")
        return labels != 1
    if train_filter == "all":
        return np.ones(day.n_sessions, dtype=bool)
    mask = (flags & ERROR_BIT) == 0
    if train_filter == "no_error_no_warn":
        mask &= (flags & WARN_BIT) == 0
    return mask


# Held-out sessions stop at about this many (whole days stop once past it; a random share
# is scaled down to it): months of history need a few days of calibration, not a tenth of
# the corpus, and calibration then holds their scores in bounded memory.
MAX_HELD_OUT_SESSIONS = 200_000


def holdout_masks(days: list[PreparedDay], fraction: float, seed: int, how: str
                  ) -> list[np.ndarray]:
    """Per day, the sessions held out of training for calibration.

    ``sessions``: a seeded random ``fraction`` of every day's sessions. ``days``: whole
    days, the newest first, until about ``fraction`` of all sessions are held out (at
    least one day), so thresholds are set on days the model never saw; with fewer than
    three training days it falls back to ``sessions``.
    """
    if how == "days" and len(days) >= 3:
        sizes = np.array([day.n_sessions for day in days])
        want = max(1, min(round(float(fraction * sizes.sum())), MAX_HELD_OUT_SESSIONS))
        held_days, total = set(), 0
        for index in range(len(days) - 1, 0, -1):      # never the oldest day
            held_days.add(index)
            total += int(sizes[index])
            if total >= want:
                break
        return [np.full(day.n_sessions, i in held_days) for i, day in enumerate(days)]
    total = sum(day.n_sessions for day in days)
    fraction = min(fraction, MAX_HELD_OUT_SESSIONS / max(total, 1))
    return [np.random.default_rng([seed, 7919, i]).random(day.n_sessions) < fraction
            for i, day in enumerate(days)]


def build_vocab(days: list[PreparedDay], masks: list[np.ndarray],
                min_event_share: float = 0.0, known: np.ndarray | None = None) -> EventVocab:
    """Vocabulary of the events in the selected (training) sessions. Events occurring
    fewer times than ``min_event_share`` x the number of training sessions stay out of
    it, so they score as unseen: a template that only a handful of sessions log is what
    an anomaly looks like, even when those sessions trained. ``known`` (raw ids) are in
    the vocabulary whatever ``masks`` hold."""
    counts = np.zeros(1, dtype=np.int64)
    for day, mask in zip(days, masks):
        events = np.asarray(day.events)
        if events.size == 0:
            continue
        keep = np.repeat(mask, day.lengths)
        day_counts = np.bincount(events[keep].astype(np.int64))
        if day_counts.size > counts.size:
            day_counts[:counts.size] += counts
            counts = day_counts
        else:
            counts[:day_counts.size] += day_counts
    if not counts.any():
        raise RadarError("the training days hold no normal sessions to learn from; check "
                         "data.train_filter and the has_error share (`radar validate`)")
    n_sessions = sum(int(mask.sum()) for mask in masks)
    keep = counts >= max(1, int(np.ceil(min_event_share * n_sessions)))
    if known is not None and known.size:
        keep = np.pad(keep, (0, max(0, int(known.max()) + 1 - keep.size)))
        keep[known] = True
    return EventVocab(np.flatnonzero(keep))


@dataclass
class TrainingSets:
    train: SessionCorpus
    calibration: SessionCorpus          # held-out sessions the training filter calls normal
    holdout: SessionCorpus              # every held-out session of the training days
    validation: SessionCorpus | None    # sessions of the validation days (validation loss)
    vocab: EventVocab
    holdout_labels: np.ndarray | None = None   # 1/0/-1 per holdout session; None unlabelled
    holdout_normal: np.ndarray | None = None   # per holdout session: in ``calibration``
    # What data.contamination screened: [training sessions, held-out sessions]
    screen: list[ScreenReport] = field(default_factory=list)

    @property
    def calibration_data(self) -> str:
        """What the calibration sessions are, for thresholds' records and reports."""
        what = "sessions of the training days held out from training"
        if len(self.screen) == 2 and self.screen[1].n_screened:
            what += (f", less the {self.screen[1].n_screened} with the rarest transitions "
                     f"(data.contamination {self.screen[1].share:g})")
        return what


def training_sets(data_config, window: int, train: DayData, val: DayData | None
                  ) -> TrainingSets:
    """The training, calibration and validation corpora of a run (see the module doc)."""
    d = data_config
    normal = [normal_mask(day, labels, d.train_filter)
              for day, labels in zip(train.days, train.labels)]
    held = holdout_masks(train.days, d.calibration_fraction, d.split_seed, d.calibration_split)
    train_masks = [n & ~h for n, h in zip(normal, held)]
    # data.contamination: the rarest-path share of the training sessions makes no event
    # known, that of the held-out ones sets no threshold (screen.py); sessions a label
    # file calls normal (a review) are never screened.
    reviewed = [labels == 0 if labels is not None else np.zeros(day.n_sessions, dtype=bool)
                for day, labels in zip(train.days, train.labels)]
    calibration = [n & h for n, h in zip(normal, held)]
    (unscreened, calibration), screened = screen(
        train.days, [[m & ~r for m, r in zip(masks, reviewed)]
                     for masks in (train_masks, calibration)],
        d.screen_share(fully_labelled(train)))
    unscreened = [u | (m & r) for u, m, r in zip(unscreened, train_masks, reviewed)]
    calibration = [c | (n & h & r) for c, n, h, r in zip(calibration, normal, held, reviewed)]
    vocab = build_vocab(train.days, unscreened, d.min_event_share,
                        known=kept_events(train.days, train_masks, unscreened)
                        if screened[0].n_screened else None)
    sets = TrainingSets(
        train=SessionCorpus(train.days, vocab, window, train_masks),
        calibration=SessionCorpus(train.days, vocab, window, calibration),
        holdout=SessionCorpus(train.days, vocab, window, held),
        validation=None, vocab=vocab, screen=screened)
    sets.holdout_labels = session_labels(train, sets.holdout)
    table = sets.holdout.sessions
    per_day = np.asarray([0] + [day.n_sessions for day in train.days]).cumsum()
    sets.holdout_normal = np.concatenate(calibration)[per_day[table.day] + table.row] \
        if table.row.size else np.zeros(0, dtype=bool)
    if val is not None:
        val_masks = [normal_mask(day, labels, d.train_filter)
                     for day, labels in zip(val.days, val.labels)]
        sets.validation = SessionCorpus(val.days, vocab, window, val_masks)
    if len(sets.train) == 0:
        raise RadarError("no training sessions left after filtering; lower "
                         "data.calibration_fraction or change data.train_filter")
    return sets


def fully_labelled(data: DayData) -> bool:
    """Whether a label file says normal or anomalous for every session of ``data``."""
    return bool(data.labels) and all(labels is not None and bool((labels >= 0).all())
                                     for labels in data.labels)


def session_labels(data: DayData, corpus: SessionCorpus) -> np.ndarray | None:
    """Labels (1/0/-1) in corpus session order, or None without a label file."""
    if not data.has_labels:
        return None
    per_day = [labels if labels is not None else np.full(day.n_sessions, -1, np.int8)
               for labels, day in zip(data.labels, data.days)]
    table = corpus.sessions
    out = np.empty(corpus.n_sessions, dtype=np.int8)
    for d, labels in enumerate(per_day):
        rows = table.day == d
        out[rows] = labels[table.row[rows]]
    return out


def training_files(days: list[PreparedDay]) -> list[list]:
    """Name, size and mtime of each training day file: what a reused model was fed."""
    return [[day.meta["source"]["name"], day.meta["source"]["size"],
             day.meta["source"]["mtime_ns"]] for day in days]
