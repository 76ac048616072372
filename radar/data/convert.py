"""Converters from public log-benchmark formats into RADAR day files plus a label file.

``hdfs_100k``: the JSON Lines of logpai/deep-loglizer's HDFS_100k
(``{"block_id", "split", "label", "events"}``) become two day files, the train
split dated before the test split, so RADAR's date split validates (and reports)
on the test split. Block ids become ``session_key``.
"""

from __future__ import annotations

import json
from pathlib import Path

from radar.errors import DataError
from radar.fsutil import atomic_write

TRAIN_DAY, TEST_DAY = "2000-01-01", "2000-01-02"


def _session(session_id: int, events: list[int], service: str, key: str | None) -> dict:
    record = {"session_id": session_id, "event_sequence": events,
              "token_ids": [101, *events, 102], "attention_mask": [1] * (len(events) + 2),
              "has_error": False, "has_warn": False, "service_name": service}
    if key is not None:
        record["session_key"] = key
    return record


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
            splits[split].append(_session(session_id, events, "hdfs", key))
            labels.append((f"preprocessed_logs_{day}.json", session_id, label, split))
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_day(out_dir / f"preprocessed_logs_{TRAIN_DAY}.json", splits["train"])
    _write_day(out_dir / f"preprocessed_logs_{TEST_DAY}.json", splits["test"])
    with atomic_write(out_dir / "labels.csv", "w") as handle:
        handle.write("file,session_id,label,split\n")
        handle.writelines(f"{f},{s},{lab},{sp}\n" for f, s, lab, sp in labels)
    return {name: len(records) for name, records in splits.items()}
