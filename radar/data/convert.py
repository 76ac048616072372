"""Converters from public log-benchmark formats into RADAR day files plus a label file.

Every converter writes two day files, the training part dated before the test part,
so RADAR's date split trains on the first and validates (and reports) on the second,
and a ``labels.csv`` (``file,session_id,label,split``) that ``--labels`` reads.

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

import json
import random
from pathlib import Path

from radar.data.files import day_file_name
from radar.data.records import session_record
from radar.errors import DataError
from radar.fsutil import atomic_write

TRAIN_DAY, TEST_DAY = "2000-01-01", "2000-01-02"


def _write_day(path: Path, records: list[dict]) -> None:
    with atomic_write(path, "w") as handle:
        handle.write("[\n")
        for i, record in enumerate(records):
            handle.write((",\n" if i else "") + json.dumps(record))
        handle.write("\n]\n")


def convert_hdfs_100k(source: str | Path, out_dir: str | Path) -> dict[str, int]:
    """Write train/test day files and ``labels.csv`` from HDFS_100k ``sessions.jsonl``."""
    source, out_dir = Path(source), Path(out_dir)
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    labels = []
    with source.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                split, events = row["split"], [int(e) for e in row["events"]]
                label, key = int(row["label"]), str(row["block_id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"not an HDFS_100k record ({exc}); expected block_id, split, "
                                "label, events", file=str(source), index=line_no) from None
            if split not in splits:
                raise DataError(f"unknown split {split!r}", file=str(source), index=line_no)
            day = TRAIN_DAY if split == "train" else TEST_DAY
            session_id = len(splits[split])
            splits[split].append(session_record(session_id, events, service="hdfs",
                                                session_key=key))
            labels.append((day_file_name(day), session_id, label, split))
    _write_split(out_dir, splits, labels)
    block_labels = [(splits[split][sid]["session_key"], label)
                    for _, sid, label, split in labels]
    with atomic_write(out_dir / "anomaly_label.csv", "w") as handle:
        handle.write("BlockId,Label\n")
        handle.writelines(f"{key},{'Anomaly' if label else 'Normal'}\n"
                          for key, label in block_labels)
    return {name: len(records) for name, records in splits.items()}


def _write_split(out_dir: Path, splits: dict[str, list[dict]], labels: list[tuple]) -> None:
    """The train and test day files and their ``labels.csv``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_day(out_dir / day_file_name(TRAIN_DAY), splits["train"])
    _write_day(out_dir / day_file_name(TEST_DAY), splits["test"])
    with atomic_write(out_dir / "labels.csv", "w") as handle:
        handle.write("file,session_id,label,split\n")
        handle.writelines(f"{f},{s},{lab},{sp}\n" for f, s, lab, sp in labels)


def read_key_sequences(path: str | Path) -> list[list[int]]:
    """Sessions of a DeepLog-style file: one per line, log keys separated by spaces."""
    path = Path(path)
    if not path.is_file():
        raise DataError("key-sequence file does not exist", file=str(path))
    sessions = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                keys = [int(token) for token in line.split()]
            except ValueError:
                raise DataError("not a key sequence; expected log-key integers separated by "
                                "spaces, one session per line", file=str(path),
                                index=line_no) from None
            if any(key < 1 for key in keys):
                raise DataError("log keys must be positive integers", file=str(path),
                                index=line_no)
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
