"""The streaming reader: layouts, bad records, damage, fallbacks, offsets (radar.data.reader)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest

from radar.data import reader
from radar.data.reader import (
    DEFAULT_FIELDS,
    TOKEN_FIELDS,
    iter_session_batches,
    iter_sessions,
    read_record_at,
)
from radar.data.records import ALL_FIELDS, ReadReport, RecordLimits, check_record
from radar.errors import DataError

LAYOUTS = ("compact", "tight", "indent", "jsonl")
ALL_WITH_LOGS = DEFAULT_FIELDS + TOKEN_FIELDS + ("original_logs",)
BAD_UTF8 = "@@not-utf8@@"       # replaced by raw invalid bytes when the file is written


# ---------------------------------------------------------------- helpers (test_cache uses them)

def make_sessions(n: int, *, seed: int = 0, padded_to: int | None = None,
                  keys: bool = False) -> list[dict]:
    """Sessions in the user's format, with non-ASCII log text."""
    rnd = random.Random(seed)
    services = ["gateway", "research", "manager"]
    sessions = []
    for i in range(n):
        events = [rnd.randrange(0, 50) for _ in range(rnd.randrange(1, 12))]
        tokens = [101, *events, 102]
        mask = [1] * len(tokens)
        if padded_to:
            tokens, mask = tokens + [0] * (padded_to - len(tokens)), mask + [0] * (
                padded_to - len(mask))
        session = {"session_id": i, "event_sequence": events, "token_ids": tokens,
                   "attention_mask": mask, "has_error": rnd.random() < 0.2,
                   "has_warn": rnd.random() < 0.3, "service_name": rnd.choice(services),
                   # Log text that looks like a record start must not split records.
                   "original_logs": [f'2025-07-03 12:00:{k:02d} INFO 요청 {{"session_id": {k}}}'
                                     for k in range(len(events))]}
        if keys:
            session["session_key"] = f"blk_{1000 + i}"
        sessions.append(session)
    return sessions


def dump_sessions(sessions: list, layout: str = "compact") -> bytes:
    """The file bytes for ``sessions`` in one of LAYOUTS."""
    if layout == "jsonl":
        text = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sessions)
    elif layout == "indent":
        text = json.dumps(sessions, indent=2, ensure_ascii=False)
    elif layout == "tight":
        text = json.dumps(sessions, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(sessions, ensure_ascii=False)
    return text.encode("utf-8").replace(BAD_UTF8.encode(), b"\xff\xfeX")


def write_day(path: Path, sessions: list, layout: str = "compact") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump_sessions(sessions, layout))
    return path


def record_offsets(data: bytes) -> list[int]:
    """Byte offset of every top-level record, found independently with the json module."""
    text = data.decode("utf-8", "surrogateescape")
    decoder, offsets = json.JSONDecoder(), []
    position = text.index("[") + 1 if text.lstrip().startswith("[") else 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return offsets
        offsets.append(len(text[:position].encode("utf-8", "surrogateescape")))
        _, position = decoder.raw_decode(text, position)


def read_all(path, **kwargs) -> tuple[list[dict], ReadReport]:
    report = ReadReport()
    return list(iter_sessions(path, report=report, **kwargs)), report


def strip_meta(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]


def expected(sessions: list[dict], fields=ALL_WITH_LOGS) -> list[dict]:
    return [{name: s.get(name) for name in set(fields) | {"session_id", "event_sequence",
                                                          "has_error", "has_warn",
                                                          "service_name"}}
            for s in sessions]


# ---------------------------------------------------------------- layouts

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padded_to", [None, 32])
def test_every_layout_reads_the_same_sessions(tmp_path, layout, padded_to):
    sessions = make_sessions(40, padded_to=padded_to, keys=True)
    path = write_day(tmp_path / f"day.{layout}.json", sessions, layout)
    records, report = read_all(path, fields=ALL_WITH_LOGS)
    assert strip_meta(records) == expected(sessions)
    assert [r["_index"] for r in records] == list(range(40))
    assert report.n_records == 40 and report.n_bad == 0 and report.truncated is None
    assert report.bytes_read == path.stat().st_size


def test_default_fields_skip_logs_and_tokens(tmp_path):
    path = write_day(tmp_path / "day.json", make_sessions(5, keys=True))
    record = next(iter_sessions(path))
    assert set(record) == set(DEFAULT_FIELDS) | {"_index", "_offset"}
    assert record["session_key"] == "blk_1000"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_offsets_point_at_each_record(tmp_path, layout):
    sessions = make_sessions(30)
    path = write_day(tmp_path / "day.json", sessions, layout)
    data = path.read_bytes()
    for record in iter_sessions(path):
        assert data[record["_offset"]:record["_offset"] + 1] == b"{"
        again = read_record_at(path, record["_offset"], ("session_id", "original_logs"))
        assert again == {"session_id": record["session_id"],
                         "original_logs": sessions[record["_index"]]["original_logs"]}


@pytest.mark.parametrize("layout", ["compact", "indent", "jsonl"])
@pytest.mark.parametrize("chunk", [160, 1000, 4096])
def test_small_chunks_give_the_same_result(tmp_path, monkeypatch, layout, chunk):
    """Records and anchors cut at every kind of chunk boundary, records larger than a chunk."""
    sessions = make_sessions(60, padded_to=24)
    sessions[7]["event_sequence"] = list(range(900))           # several chunks long
    path = write_day(tmp_path / "day.json", sessions, layout)
    whole, _ = read_all(path, fields=ALL_WITH_LOGS)
    monkeypatch.setattr(reader, "CHUNK_SIZE", chunk)
    chunked, report = read_all(path, fields=ALL_WITH_LOGS)
    assert chunked == whole and report.n_records == 60


def test_batches_hold_every_record_once(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 2000)
    path = write_day(tmp_path / "day.json", make_sessions(100), "indent")
    batches = list(iter_session_batches(path))
    assert len(batches) > 1
    assert [r["session_id"] for b in batches for r in b] == list(range(100))


def test_utf8_bom_is_skipped(tmp_path):
    path = tmp_path / "day.json"
    path.write_bytes(b"\xef\xbb\xbf" + dump_sessions(make_sessions(3)))
    assert [r["session_id"] for r in iter_sessions(path)] == [0, 1, 2]


# ---------------------------------------------------------------- bad records

def bad_sessions() -> tuple[list[dict], dict[int, str]]:
    sessions = make_sessions(12, padded_to=16)
    del sessions[1]["has_warn"]
    sessions[3]["has_error"] = "yes"
    sessions[5]["event_sequence"] = []
    sessions[6]["token_ids"][1] = 5000
    sessions[8]["attention_mask"] = sessions[8]["attention_mask"][:-3]
    sessions[10]["service_name"] = BAD_UTF8
    kinds = {1: "missing_field", 3: "wrong_type", 5: "empty_sequence", 6: "token_out_of_vocab",
             8: "mask_length_mismatch", 10: "invalid_utf8"}
    return sessions, kinds


@pytest.mark.parametrize("layout", ["compact", "indent", "jsonl"])
def test_bad_records_are_skipped_and_counted_with_their_place(tmp_path, layout):
    sessions, kinds = bad_sessions()
    path = write_day(tmp_path / "day.json", sessions, layout)
    records, report = read_all(path, fields=DEFAULT_FIELDS + TOKEN_FIELDS, vocab_size=1000)
    assert [r["_index"] for r in records] == [i for i in range(12) if i not in kinds]
    assert report.n_bad == 6 and dict(report.bad_counts) == {k: 1 for k in kinds.values()}
    offsets = record_offsets(path.read_bytes())
    assert len(report.examples) == 6
    for bad in report.examples:
        assert bad.file == str(path) and kinds[bad.index] == bad.kind
        assert bad.offset == offsets[bad.index]
    assert [r["_offset"] for r in records] == [offsets[r["_index"]] for r in records]


def test_optional_fields_are_checked_only_when_read(tmp_path):
    sessions, _ = bad_sessions()
    path = write_day(tmp_path / "day.json", sessions)
    _, report = read_all(path)                  # default fields: no token checks
    assert dict(report.bad_counts) == {"missing_field": 1, "wrong_type": 1,
                                       "empty_sequence": 1, "invalid_utf8": 1}


def test_strict_raises_at_the_first_bad_record(tmp_path):
    sessions, _ = bad_sessions()
    path = write_day(tmp_path / "day.json", sessions)
    seen = []
    with pytest.raises(DataError) as caught:
        for record in iter_sessions(path, strict=True):
            seen.append(record["session_id"])
    error = caught.value
    assert seen == [0]
    assert (error.file, error.index) == (str(path), 1)
    assert path.read_bytes()[error.offset:error.offset + 1] == b"{"
    message = str(error)
    assert "record 1" in message and f"byte {error.offset}" in message
    assert "'has_warn' is missing" in message and "without --strict" in message


def test_check_record_names_each_problem():
    limits = RecordLimits(vocab_size=10)
    good = make_sessions(1, padded_to=8)[0]
    good["token_ids"], good["attention_mask"] = [1, 2, 3, 0, 0, 0, 0, 0], [1, 1, 1] + [0] * 5
    assert check_record(good, limits) is None
    cases = [({"session_id": True}, "wrong_type"), ({"event_sequence": [1, -2]}, "wrong_type"),
             ({"event_sequence": [1.5]}, "wrong_type"), ({"service_name": 3}, "wrong_type"),
             ({"session_key": 3}, "wrong_type"), ({"original_logs": [1]}, "wrong_type"),
             ({"token_ids": [1] * 9}, "mask_length_mismatch"),
             ({"token_ids": [1, 2, 10, 0, 0, 0, 0, 0]}, "token_out_of_vocab"),
             ({"session_id": 2**64}, "wrong_type")]
    for change, kind in cases:
        assert check_record({**good, **change}, limits)[0] == kind, change
    assert check_record([], limits)[0] == "wrong_type"
    assert check_record({"session_id": 1}, limits)[0] == "missing_field"


def test_null_optional_fields_mean_absent(tmp_path):
    sessions = make_sessions(3)
    sessions[1].update(token_ids=None, attention_mask=None, original_logs=None)
    path = write_day(tmp_path / "day.json", sessions)
    records, report = read_all(path, fields=ALL_WITH_LOGS)
    assert report.n_bad == 0 and records[1]["token_ids"] is None


# ---------------------------------------------------------------- damage

@pytest.mark.parametrize("layout", ["compact", "indent", "jsonl"])
def test_truncated_file_yields_the_prefix_then_names_the_byte(tmp_path, layout):
    sessions = make_sessions(50)
    full = dump_sessions(sessions, layout)
    cut_record = 30
    good = write_day(tmp_path / "good.json", sessions, layout)
    offsets = [r["_offset"] for r in iter_sessions(good)]
    path = tmp_path / "cut.json"
    path.write_bytes(full[:offsets[cut_record] + 25])          # inside record 30
    seen = []
    report = ReadReport()
    with pytest.raises(DataError) as caught:
        for record in iter_sessions(path, report=report):
            seen.append(record["session_id"])
    assert seen == list(range(cut_record))
    assert caught.value.offset == offsets[cut_record]
    assert f"truncated or corrupt at byte {offsets[cut_record]}" in str(caught.value)
    assert report.truncated is caught.value and report.n_records == cut_record


def test_missing_closing_bracket_keeps_every_record(tmp_path):
    full = dump_sessions(make_sessions(10))
    path = tmp_path / "day.json"
    path.write_bytes(full[:-1])
    seen = []
    with pytest.raises(DataError, match="without the closing"):
        for record in iter_sessions(path):
            seen.append(record["session_id"])
    assert seen == list(range(10))


def test_corruption_in_the_middle_stops_there(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 1024)
    sessions = make_sessions(80)
    good = write_day(tmp_path / "good.json", sessions, "indent")
    offsets = [r["_offset"] for r in iter_sessions(good)]
    data = bytearray(good.read_bytes())
    data[offsets[40] + 30:offsets[40] + 34] = b"\x00}}]"
    path = tmp_path / "bad.json"
    path.write_bytes(bytes(data))
    seen = []
    with pytest.raises(DataError) as caught:
        for record in iter_sessions(path):
            seen.append(record["session_id"])
    assert seen == list(range(40)) and caught.value.offset == offsets[40]


@pytest.mark.parametrize("content", [b"", b"   \n", b"[", b"[\n  "])
def test_empty_or_cut_off_files_are_errors(tmp_path, content):
    path = tmp_path / "day.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match="truncated or corrupt"):
        list(iter_sessions(path))


@pytest.mark.parametrize("content", [b"[]", b"[ ]\n", b"[\n]\n"])
def test_empty_array_has_no_sessions(tmp_path, content):
    path = tmp_path / "day.json"
    path.write_bytes(content)
    records, report = read_all(path)
    assert records == [] and report.n_records == 0 and report.truncated is None


def test_data_after_the_array_is_corruption(tmp_path):
    path = tmp_path / "day.json"
    path.write_bytes(b"[] x")
    with pytest.raises(DataError, match="after the closing"):
        list(iter_sessions(path))


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "day.json"
    path.write_text("session_id,events\n1,2\n")
    with pytest.raises(DataError, match="expected a JSON array"):
        list(iter_sessions(path))


# ---------------------------------------------------------------- notices and UTF-8

def test_long_sequence_is_a_notice_not_a_bad_record(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 4096)
    sessions = make_sessions(5)
    sessions[2]["event_sequence"] = list(range(20000))             # ~120 kB, many chunks
    path = write_day(tmp_path / "day.json", sessions, "indent")
    records, report = read_all(path, max_seq_length=512)
    assert report.n_bad == 0 and report.notices["long_sequence"] == 1
    assert records[2]["event_sequence"] == list(range(20000))


def test_bad_utf8_in_original_logs(tmp_path):
    sessions = make_sessions(4)
    sessions[2]["original_logs"] = ["ok", f"broken {BAD_UTF8} line"]
    path = write_day(tmp_path / "day.json", sessions)
    records, report = read_all(path)                 # logs not read: nothing to see
    assert len(records) == 4 and report.n_bad == 0 and not report.notices
    records, report = read_all(path, fields=ALL_WITH_LOGS)
    assert len(records) == 4 and report.n_bad == 0
    assert report.notices["original_logs_invalid_utf8"] == 1
    assert records[2]["original_logs"][1].startswith("broken \ufffd")
    logs = read_record_at(path, records[2]["_offset"], ("original_logs",))["original_logs"]
    assert "\ufffd" in logs[1]


def test_bad_utf8_in_a_needed_field_is_a_bad_record(tmp_path):
    sessions = make_sessions(4)
    sessions[1]["service_name"] = BAD_UTF8
    path = write_day(tmp_path / "day.json", sessions)
    for fields in (DEFAULT_FIELDS, ALL_WITH_LOGS):
        records, report = read_all(path, fields=fields)
        assert [r["session_id"] for r in records] == [0, 2, 3]
        assert report.bad_counts["invalid_utf8"] == 1
        assert "service_name" in report.examples[0].detail


# ---------------------------------------------------------------- ijson fallback

def reorder(session: dict) -> dict:
    """The same record with service_name first: the anchors cannot find it."""
    return {"service_name": session["service_name"],
            **{k: v for k, v in session.items() if k != "service_name"}}


@pytest.mark.parametrize("layout", ["compact", "indent"])
def test_records_not_starting_with_session_id_fall_back_to_ijson(tmp_path, layout):
    sessions = make_sessions(30, padded_to=16)
    path = write_day(tmp_path / "day.json", [reorder(s) for s in sessions], layout)
    records, report = read_all(path, fields=ALL_WITH_LOGS)
    assert strip_meta(records) == expected(sessions)
    assert all(r["_offset"] is None for r in records) and report.n_records == 30


def test_ijson_takes_over_mid_file_and_keeps_counting(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK_SIZE", 2048)
    sessions, kinds = bad_sessions()
    sessions += make_sessions(30, seed=1, padded_to=16)
    mixed = sessions[:20] + [reorder(s) for s in sessions[20:]]
    path = write_day(tmp_path / "day.json", mixed)
    records, report = read_all(path, fields=DEFAULT_FIELDS + TOKEN_FIELDS, vocab_size=1000)
    assert len(records) + report.n_bad == len(sessions)
    assert report.n_bad == len(kinds)
    assert [r["_index"] for r in records] == [i for i in range(len(sessions)) if i not in kinds]
    assert records[0]["_offset"] is not None and records[-1]["_offset"] is None


def test_ijson_fallback_reports_damage(tmp_path):
    text = dump_sessions([reorder(s) for s in make_sessions(10)])
    path = tmp_path / "day.json"
    path.write_bytes(text[:len(text) // 2])
    seen = []
    with pytest.raises(DataError, match="truncated or corrupt"):
        for record in iter_sessions(path):
            seen.append(record["session_id"])
    assert 0 < len(seen) < 10


def test_non_object_items_are_bad_records(tmp_path):
    path = tmp_path / "day.json"
    path.write_text(json.dumps([1, "x", make_sessions(1)[0]]))
    records, report = read_all(path)
    assert len(records) == 1 and report.bad_counts["wrong_type"] == 2


# ---------------------------------------------------------------- misc API

def test_read_record_at_rejects_a_wrong_offset(tmp_path):
    path = write_day(tmp_path / "day.json", make_sessions(3))
    with pytest.raises(DataError, match="no record starts here"):
        read_record_at(path, 5)
    first = next(iter_sessions(path))
    assert read_record_at(path, first["_offset"])["session_id"] == 0      # all fields


def test_unknown_fields_are_refused(tmp_path):
    path = write_day(tmp_path / "day.json", make_sessions(1))
    with pytest.raises(ValueError, match="unknown field 'evnts'; available: session_id"):
        list(iter_sessions(path, fields=("evnts",)))


def test_without_offsets(tmp_path):
    path = write_day(tmp_path / "day.json", make_sessions(2))
    assert all("_offset" not in r for r in iter_sessions(path, with_offsets=False))


def test_report_merge_and_round_trip(tmp_path):
    sessions, _ = bad_sessions()
    first = write_day(tmp_path / "a.json", sessions)
    second = tmp_path / "b.json"
    second.write_bytes(dump_sessions(sessions)[:-40])
    _, report_a = read_all(first)
    report_b = ReadReport()
    with pytest.raises(DataError):
        list(iter_sessions(second, report=report_b))
    merged = report_a.merge(report_b)
    assert merged.file is None and merged.n_bad == report_a.n_bad + report_b.n_bad
    assert merged.truncated is report_b.truncated
    data = json.loads(json.dumps(merged.to_dict()))
    again = ReadReport.from_dict(data)
    assert again.to_dict() == merged.to_dict()
    assert again.truncated.offset == report_b.truncated.offset
    assert str(again.truncated) == str(report_b.truncated)
    assert set(ALL_FIELDS) >= set(DEFAULT_FIELDS)


# ---------------------------------------------------------------- hostile nesting

def deep(depth: int = 5000) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("layout", ["compact", "indent", "jsonl"])
@pytest.mark.parametrize("field", ["extra", "service_name", "token_ids", "original_logs"])
def test_deeply_nested_value_is_a_bad_record_not_a_recursion_error(tmp_path, layout, field):
    sessions = make_sessions(3)
    sessions[1][field] = "@@DEEP@@"
    text = dump_sessions(sessions, layout).replace(b'"@@DEEP@@"', deep().encode())
    path = tmp_path / "day.json"
    path.write_bytes(text)
    records, report = read_all(path, fields=ALL_WITH_LOGS)
    assert [r["session_id"] for r in records] == [0, 2]
    assert report.bad_counts == {"too_deep": 1}
    assert report.examples[0].index == 1


def test_deeply_nested_raw_token_ids_are_bad_in_prepare_checks(tmp_path):
    from radar.data.records import TokenLayoutChecker

    sessions = make_sessions(2)
    sessions[0]["token_ids"] = "@@DEEP@@"
    path = tmp_path / "day.json"
    path.write_bytes(dump_sessions(sessions).replace(b'"@@DEEP@@"', deep().encode()))
    report = ReadReport()
    batches = iter_session_batches(path, raw_fields=TOKEN_FIELDS, report=report,
                                   batch_check=TokenLayoutChecker(None))
    assert [r["session_id"] for batch in batches for r in batch] == [1]
    assert report.n_bad == 1


def test_read_record_at_a_deeply_nested_record_is_a_data_error(tmp_path):
    path = tmp_path / "day.json"
    path.write_text('[{"session_id": 1, "x": ' + deep() + "}]")
    with pytest.raises(DataError):
        read_record_at(path, 1)


def test_read_record_at_checks_the_fields_it_returns(tmp_path):
    sessions = make_sessions(2)
    sessions[1]["original_logs"] = "one string, not a list of lines"
    path = write_day(tmp_path / "day.json", sessions)
    second = list(iter_sessions(path))[1]
    with pytest.raises(DataError, match="original_logs must be an array of strings"):
        read_record_at(path, second["_offset"], fields=("session_id", "original_logs"))


def test_raw_token_ids_with_a_number_out_of_range_are_a_bad_record(tmp_path):
    from radar.data.records import TokenLayoutChecker

    sessions = make_sessions(2, padded_to=16)
    path = tmp_path / "day.json"
    path.write_bytes(dump_sessions(sessions).replace(b'"token_ids": [101', b'"token_ids": [1e999',
                                                     1))
    report = ReadReport()
    batches = iter_session_batches(path, raw_fields=TOKEN_FIELDS, report=report,
                                   batch_check=TokenLayoutChecker(None))
    assert [r["session_id"] for batch in batches for r in batch] == [1]
    assert report.bad_counts == {"wrong_type": 1}


class _Msgspec023:
    """A decoder failing on bad UTF-8 the way msgspec 0.23 does (DecodeError)."""

    def __init__(self, message):
        self.message = message

    def decode(self, piece):
        raise msgspec.DecodeError(self.message)


def test_bad_utf8_is_told_from_broken_json_whichever_msgspec_decodes():
    with pytest.raises(UnicodeDecodeError):
        reader._decode_text(_Msgspec023("Invalid UTF-8 encoded string"), b'{"a": "\xff"}')
    with pytest.raises(msgspec.DecodeError, match="truncated"):
        reader._decode_text(_Msgspec023("Input data was truncated"), b'{"a": ')
    with pytest.raises(UnicodeDecodeError):            # and as msgspec <= 0.22 does
        reader._decode_text(msgspec.json.Decoder(), b'{"a": "\xff\xfe"}')
