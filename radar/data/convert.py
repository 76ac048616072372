"""Converters from public log-benchmark formats into RADAR day files plus a label file.

Each input format is a :class:`Converter` registered through the ``register_converters``
hook (the built-in plugin ``radar_plugins.convert`` registers the two below), so a new
format is one plugin and ``radar convert`` lists whatever is registered.

Every converter writes two day files, the training part dated before the test part,
so RADAR's date split trains on the first and validates (and reports) on the second,
and a ``labels.csv`` (``file,session_id,label,split``) that ``--labels`` reads, through
the day-file and label writers every RADAR tool uses (:mod:`radar.data.files`,
:mod:`radar.data.labels`).

- ``hdfs_100k``: the JSON Lines of logpai/deep-loglizer's HDFS_100k
  (``{"block_id", "split", "label", "events"}``). Block ids become ``session_key``, and
  a LogHub-style ``anomaly_label.csv`` (``BlockId,Label``) is written too, so the same
  labels join sessions that ``radar ingest`` makes from raw HDFS lines.
- ``deeplog``: DeepLog-style key-sequence files (one session per line, space-separated
  log keys), as in wuyifan18/DeepLog's ``hdfs_train`` / ``hdfs_test_abnormal``. A
  seeded share of the normal sessions trains; the rest of them and every abnormal
  session make the test day. ``session_key`` is ``FILE_NAME:LINE``.
"""

from __future__ import annotations

import abc
import json
import random
from pathlib import Path
from typing import Any, ClassVar

import click

from radar.data.files import day_file_name, write_day_file
from radar.data.labels import BLOCK_LABELS_NAME, LABELS_NAME, write_block_labels, write_labels
from radar.data.records import MAX_EVENT_ID, session_record
from radar.data.textfiles import text_lines
from radar.errors import DataError

TRAIN_DAY, TEST_DAY = "2000-01-01", "2000-01-02"


def convert_hdfs_100k(source: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write train/test day files and ``labels.csv`` from HDFS_100k ``sessions.jsonl``."""
    source, out_dir = Path(source), Path(out_dir)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    labels = []
    if not source.is_file():
        raise DataError("HDFS_100k file does not exist", file=str(source))
    for line_no, line in enumerate(text_lines(source, "the HDFS_100k file"), start=1):
        if not line.strip():
            continue
        split, events, label, key = _hdfs_100k_row(line, source, line_no)
        day = TRAIN_DAY if split == "train" else TEST_DAY
        session_id = len(splits[split])
        splits[split].append(session_record(session_id, events, service="hdfs",
                                            session_key=key))
        labels.append((day_file_name(day), session_id, label, split))
    _write_split(out_dir, splits, labels)
    write_block_labels(out_dir / BLOCK_LABELS_NAME,
                       [(splits[split][sid]["session_key"], label)
                        for _, sid, label, split in labels])
    return {name: len(records) for name, records in splits.items()}


def _hdfs_100k_row(line: str, source: Path, line_no: int) -> tuple[str, list[int], int, str]:
    """(split, events, label, block id) of one HDFS_100k line, checked."""
    try:
        row = json.loads(line)
        split, events, label, key = row["split"], row["events"], row["label"], row["block_id"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DataError(f"not an HDFS_100k record ({type(exc).__name__}); "
                        "expected a JSON object with block_id, split, label, events",
                        file=str(source), index=line_no) from None
    problem = None
    if split not in ("train", "test"):
        problem = f"split {split!r} is neither 'train' nor 'test'"
    elif not (isinstance(events, list) and events and all(
            isinstance(e, int) and not isinstance(e, bool) and 0 <= e <= MAX_EVENT_ID
            for e in events)):
        problem = f"events must be a non-empty list of integers from 0 to {MAX_EVENT_ID}"
    elif label not in (0, 1) or isinstance(label, bool):
        problem = f"label {label!r} is neither 0 nor 1"
    elif not isinstance(key, (str, int)) or isinstance(key, bool):
        problem = "block_id must be a string"
    if problem:
        raise DataError(problem, file=str(source), index=line_no)
    return split, events, label, str(key)


def _write_split(out_dir: Path, splits: dict[str, list[dict]], labels: list[tuple]) -> None:
    """The train and test day files and their ``labels.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_day_file(out_dir / day_file_name(TRAIN_DAY), splits["train"])
    write_day_file(out_dir / day_file_name(TEST_DAY), splits["test"])
    write_labels(out_dir / LABELS_NAME, labels, extra_columns=("split",))


def read_key_sequences(path: str | Path) -> list[list[int]]:
    """Sessions of a DeepLog-style file: one per line, log keys separated by spaces."""
    path = Path(path)
    if not path.is_file():
        raise DataError("key-sequence file does not exist", file=str(path))
    sessions = []
    for line_no, line in enumerate(text_lines(path, "the key-sequence file"), start=1):
        try:
            keys = [int(token) for token in line.split()]
        except ValueError:
            raise DataError("not a key sequence; expected log-key integers separated by "
                            "spaces, one session per line", file=str(path),
                            index=line_no) from None
        if any(not 1 <= key <= MAX_EVENT_ID for key in keys):
            raise DataError(f"log keys must be integers from 1 to {MAX_EVENT_ID}",
                            file=str(path), index=line_no)
        sessions.append(keys)
    return sessions


def convert_key_sequences(normal: list[str | Path], abnormal: list[str | Path],
                          out_dir: str | Path, *, train_fraction: float = 0.5,
                          seed: int = 0, service: str = "hdfs") -> dict[str, int]:
    """Day files and ``labels.csv`` from DeepLog-style normal and abnormal key files.

    A seeded ``train_fraction`` of the normal sessions makes the training day; the rest
    of the normal sessions and every abnormal session make the test day. Blank lines
    hold no session and are skipped (RADAR has no empty sessions); the others keep their
    line number in ``session_key``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise DataError(f"train fraction must be between 0 and 1, not {train_fraction}")
    rng = random.Random(seed)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    labels = []
    for label, paths in ((0, normal), (1, abnormal)):
        for path in paths:
            for line_no, events in enumerate(read_key_sequences(path), start=1):
                if not events:
                    continue
                split = "train" if label == 0 and rng.random() < train_fraction else "test"
                day = TRAIN_DAY if split == "train" else TEST_DAY
                session_id = len(splits[split])
                key = f"{Path(path).name}:{line_no}"
                splits[split].append(session_record(session_id, events, service=service,
                                                    session_key=key))
                labels.append((day_file_name(day), session_id, label, split))
    if not splits["train"]:
        raise DataError("no normal sessions to train on; pass at least one --normal file "
                        "with sessions in it")
    _write_split(Path(out_dir), splits, labels)
    return {name: len(records) for name, records in splits.items()}


# ---------------------------------------------------------------- the registry's entries

class Converter(abc.ABC):
    """An input format that ``radar convert NAME`` turns into day files and labels.

    ``name`` is the subcommand; the class docstring is its help; :meth:`parameters` are
    its click arguments and options (``--out`` is added for every converter);
    :meth:`convert` writes through :func:`radar.data.files.write_day_file` and
    :func:`radar.data.labels.write_labels` and returns the sessions written per part,
    ``{"train": n, "test": m}``.
    """

    name: ClassVar[str] = ""

    @classmethod
    def parameters(cls) -> list[click.Parameter]:
        return []

    @abc.abstractmethod
    def convert(self, out_dir: Path, **options: Any) -> dict[str, int]:
        """Write the day files and labels of ``out_dir``; sessions per part."""


_PATH = click.Path(dir_okay=False, path_type=Path)


class HDFS100kConverter(Converter):
    """HDFS_100k JSON Lines ({"block_id", "split", "label", "events"}) into day files.

    Also writes anomaly_label.csv (BlockId,Label), which joins sessions made by
    `radar ingest --preset hdfs` on their block id.
    """

    name = "hdfs-100k"

    @classmethod
    def parameters(cls) -> list[click.Parameter]:
        return [click.Argument(["source"], type=_PATH)]

    def convert(self, out_dir: Path, *, source: Path) -> dict[str, int]:
        return convert_hdfs_100k(source, out_dir)


class KeySequenceConverter(Converter):
    """DeepLog-style key-sequence files (one session per line) into day files."""

    name = "deeplog"

    @classmethod
    def parameters(cls) -> list[click.Parameter]:
        return [
            click.Option(["--normal"], multiple=True, required=True, type=_PATH,
                         help="Key-sequence file of normal sessions (repeatable)."),
            click.Option(["--abnormal"], multiple=True, type=_PATH,
                         help="Key-sequence file of abnormal sessions (repeatable)."),
            click.Option(["--train-fraction"], default=0.5, show_default=True,
                         type=click.FloatRange(0, 1, min_open=True, max_open=True),
                         help="Share of the normal sessions that trains; the rest are tested."),
            click.Option(["--seed"], default=0, show_default=True, type=int),
            click.Option(["--service"], default="hdfs", show_default=True,
                         help="service_name to give."),
        ]

    def convert(self, out_dir: Path, *, normal, abnormal, train_fraction: float, seed: int,
                service: str) -> dict[str, int]:
        return convert_key_sequences(list(normal), list(abnormal), out_dir,
                                     train_fraction=train_fraction, seed=seed, service=service)
