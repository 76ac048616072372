"""The prepared cache: round trip, gather, freshness, atomicity, parallelism
(radar.data.cache, radar.data.cache_build)."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from test_reader import dump_sessions, make_sessions, write_day

from radar.data import cache_build
from radar.data.cache import cache_dir_for, is_prepared_and_fresh, open_prepared
from radar.data.cache_build import prepare_file, prepare_files
from radar.data.reader import read_record_at
from radar.errors import DataError


def prepared(tmp_path, sessions, layout="compact", name="preprocessed_logs_2025-07-03.json",
             **options):
    day = write_day(tmp_path / "data" / name, sessions, layout)
    result = prepare_file(day, tmp_path / "cache", **options)
    return day, result, open_prepared(cache_dir_for(day, tmp_path / "cache"))


def day_arrays(day_dir) -> dict:
    day = open_prepared(day_dir)
    arrays = {name: np.asarray(getattr(day, name)).copy() for name in
              ("events", "offsets", "session_ids", "flags", "service", "record_offsets")}
    arrays["services"] = day.services
    return arrays


# ---------------------------------------------------------------- round trip

@pytest.mark.parametrize("layout", ["compact", "indent", "jsonl"])
@pytest.mark.parametrize("padded_to", [None, 16])
def test_round_trip(tmp_path, layout, padded_to):
    sessions = make_sessions(50, padded_to=padded_to)
    source, result, day = prepared(tmp_path, sessions, layout)
    assert (result.n_sessions, result.skipped, result.truncated) == (50, False, None)
    assert day.n_sessions == 50 and day.n_events == sum(len(s["event_sequence"])
                                                         for s in sessions)
    ids, lengths = day.gather(np.arange(50), max_len=100, pad=-1)
    for row, session in enumerate(sessions):
        events = session["event_sequence"]
        assert lengths[row] == len(events)
        assert ids[row, :len(events)].tolist() == events
        assert (ids[row, len(events):] == -1).all()
    assert ids.dtype == np.int64 and ids.shape == (50, max(map(len, (s["event_sequence"]
                                                                        for s in sessions))))
    assert day.session_ids.tolist() == list(range(50))
    assert day.has_error.tolist() == [s["has_error"] for s in sessions]
    assert day.has_warn.tolist() == [s["has_warn"] for s in sessions]
    assert day.service_names(range(50)) == [s["service_name"] for s in sessions]
    assert day.meta["token_ids_layout"] == "cls_events_sep" and day.session_keys is None
    assert day.meta["n_error"] == sum(s["has_error"] for s in sessions)
    logs = read_record_at(source, int(day.record_offsets[9]), ("original_logs",))
    assert logs["original_logs"] == sessions[9]["original_logs"]


def test_gather_windows_clip_and_pad(tmp_path):
    sessions = make_sessions(3)
    sessions[1]["event_sequence"] = list(range(100, 130))
    _, _, day = prepared(tmp_path, sessions)
    ids, lengths = day.gather([1, 1, 1, 0], starts=[0, 10, 28, 5], max_len=8, pad=7)
    assert lengths.tolist() == [8, 8, 2, max(0, min(8, len(sessions[0]["event_sequence"]) - 5))]
    assert ids[0].tolist() == list(range(100, 108))
    assert ids[1].tolist() == list(range(110, 118))
    assert ids[2].tolist() == [128, 129] + [7] * 6
    ids, lengths = day.gather(np.array([], dtype=np.int64), max_len=8)
    assert ids.shape == (0, 0) and lengths.shape == (0,)


def test_session_keys_are_kept(tmp_path):
    sessions = make_sessions(6, keys=True)
    del sessions[0]["session_key"]
    _, _, day = prepared(tmp_path, sessions)
    assert day.session_keys == [None] + [f"blk_{1000 + i}" for i in range(1, 6)]


def test_bad_records_and_notices_are_in_meta(tmp_path):
    sessions = make_sessions(10, padded_to=16)
    sessions[2]["event_sequence"] = []
    sessions[4]["attention_mask"] = [1]
    sessions[6].update(event_sequence=list(range(40)), token_ids=[101, *range(14), 102],
                       attention_mask=[1] * 16)       # cut to fit the padded length
    _, result, day = prepared(tmp_path, sessions, max_seq_length=32)
    assert result.report.n_bad == 2 and day.n_sessions == 8
    assert day.meta["report"]["bad_counts"] == {"empty_sequence": 1,
                                                "mask_length_mismatch": 1}
    assert day.meta["report"]["notices"] == {"long_sequence": 1}
    assert day.meta["lengths"]["n_long"] == 1 and day.meta["lengths"]["max"] == 40
    assert day.session_ids.tolist() == [0, 1, 3, 5, 6, 7, 8, 9]
    assert day.meta["token_ids_layout"] == "cls_events_sep"


# ---------------------------------------------------------------- token layouts

def test_custom_token_layout_is_stored(tmp_path):
    sessions = make_sessions(20, padded_to=16)
    sessions[3]["token_ids"] = [101, 7, 7, 102] + [0] * 12
    sessions[3]["attention_mask"] = [1, 1, 1, 1] + [0] * 12
    _, _, day = prepared(tmp_path, sessions)
    assert day.meta["token_ids_layout"] == "custom"
    tokens, lengths = day.tokens(np.arange(20))
    for row, session in enumerate(sessions):
        active = [t for t, m in zip(session["token_ids"], session["attention_mask"]) if m]
        assert tokens[row, :lengths[row]].tolist() == active


@pytest.mark.parametrize("change, layout", [
    ({"token_ids": None, "attention_mask": None}, "absent"),
    ({}, "cls_events_sep"),
])
def test_absent_and_standard_layouts_store_no_tokens(tmp_path, change, layout):
    sessions = [{**s, **change} for s in make_sessions(5, padded_to=16)]
    _, _, day = prepared(tmp_path, sessions)
    assert day.meta["token_ids_layout"] == layout
    assert not (day.directory / "tokens.npy").exists()
    with pytest.raises(DataError, match="use gather"):
        day.tokens([0])


def test_cut_to_fit_tokens_still_count_as_standard(tmp_path):
    sessions = make_sessions(3, padded_to=8)
    events = list(range(1, 20))
    sessions[1].update(event_sequence=events, token_ids=[101, *events[:6], 102],
                       attention_mask=[1] * 8)
    _, result, day = prepared(tmp_path, sessions)
    assert result.report.n_bad == 0 and day.meta["token_ids_layout"] == "cls_events_sep"


def test_odd_token_lists_are_checked_in_full(tmp_path):
    sessions = make_sessions(6, padded_to=16)
    sessions[1].update(event_sequence=[4], token_ids=[], attention_mask=[1, 1, 1])
    sessions[2]["token_ids"] = [101, 1.5] + [0] * 14
    sessions[3]["attention_mask"] = None                  # no mask: zeros end the tokens
    sessions[4].update(event_sequence=[1, 2, 3], token_ids=[101, 1, 9, 3, 102] + [0] * 11,
                       attention_mask=[1] * 5 + [0] * 11)
    _, result, day = prepared(tmp_path, sessions)
    assert result.report.bad_counts == {"mask_length_mismatch": 1, "wrong_type": 1}
    assert day.meta["token_ids_layout"] == "custom"
    assert day.session_ids.tolist() == [0, 3, 4, 5]


def test_token_vocab_limit(tmp_path):
    sessions = make_sessions(5, padded_to=16)
    sessions[2]["event_sequence"] = [1, 500]
    sessions[2]["token_ids"] = [101, 1, 500, 102] + [0] * 12
    sessions[2]["attention_mask"] = [1] * 4 + [0] * 12
    _, result, _ = prepared(tmp_path, sessions, vocab_size=200)
    assert result.report.bad_counts == {"token_out_of_vocab": 1}


# ---------------------------------------------------------------- freshness and atomicity

def test_unchanged_files_are_skipped_and_changed_ones_redone(tmp_path):
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    first = prepare_files([day], tmp_path / "cache")
    assert not first[0].skipped and is_prepared_and_fresh(day, tmp_path / "cache")
    again = prepare_files([day], tmp_path / "cache")
    assert again[0].skipped and again[0].n_sessions == 5
    assert again[0].report.to_dict() == first[0].report.to_dict()
    write_day(day, make_sessions(7))
    os.utime(day, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert not is_prepared_and_fresh(day, tmp_path / "cache")
    redone = prepare_files([day], tmp_path / "cache")
    assert not redone[0].skipped and open_prepared(cache_dir_for(day, tmp_path / "cache")
                                                   ).n_sessions == 7
    assert not is_prepared_and_fresh(day, tmp_path / "cache", vocab_size=100)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a"]


@pytest.mark.parametrize("step", ["_write_meta", "_install"])
def test_an_interrupted_prepare_leaves_no_cache(tmp_path, monkeypatch, step):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_build, step, fail)
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    with pytest.raises(KeyboardInterrupt):
        prepare_file(day, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_failure_while_writing_arrays_leaves_no_cache(tmp_path, monkeypatch):
    def fail(self, batch):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cache_build._DayWriter, "add", fail)
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    with pytest.raises(RuntimeError):
        prepare_file(day, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_stale_temp_directories_are_cleaned(tmp_path):
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    stale = tmp_path / "cache" / ".a.tmp-999999999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "events.npy").write_bytes(b"half")
    prepare_file(day, tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a"]


def test_truncated_source_keeps_the_good_prefix(tmp_path):
    sessions = make_sessions(30)
    day = tmp_path / "data" / "a.json"
    day.parent.mkdir()
    data = dump_sessions(sessions)
    day.write_bytes(data[:len(data) // 2])
    result = prepare_file(day, tmp_path / "cache")
    prepared_day = open_prepared(cache_dir_for(day, tmp_path / "cache"))
    assert result.truncated is not None and 0 < result.n_sessions < 30
    assert prepared_day.meta["truncated"]["offset"] == result.truncated.offset
    assert prepared_day.session_ids.tolist() == list(range(result.n_sessions))
    skipped = prepare_files([day], tmp_path / "cache")[0]
    assert skipped.skipped and str(skipped.truncated) == str(result.truncated)
    with pytest.raises(DataError, match="truncated or corrupt"):
        prepare_files([day], tmp_path / "cache", strict=True)


def test_strict_writes_nothing(tmp_path):
    sessions = make_sessions(5)
    sessions[3]["has_warn"] = None
    day = write_day(tmp_path / "data" / "a.json", sessions)
    with pytest.raises(DataError, match="record 3"):
        prepare_file(day, tmp_path / "cache", strict=True)
    assert list((tmp_path / "cache").iterdir()) == []


def test_open_prepared_needs_a_prepared_day(tmp_path):
    with pytest.raises(DataError, match="run `radar prepare` first"):
        open_prepared(tmp_path / "nothing")
    _, _, day = prepared(tmp_path, make_sessions(2))
    meta = json.loads((day.directory / "meta.json").read_text())
    meta["format_version"] = 0
    (day.directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="another RADAR version"):
        open_prepared(day.directory)


def test_empty_array_prepares_an_empty_day(tmp_path):
    day = tmp_path / "a.json"
    day.write_text("[]")
    prepare_file(day, tmp_path / "cache")
    empty = open_prepared(cache_dir_for(day, tmp_path / "cache"))
    assert empty.n_sessions == 0 and empty.lengths.size == 0
    assert empty.gather([], max_len=4)[0].shape == (0, 0)


# ---------------------------------------------------------------- parallel

def test_parallel_prepare_equals_serial(tmp_path):
    days = [write_day(tmp_path / "data" / f"preprocessed_logs_2025-07-0{i}.json",
                      make_sessions(40 + 10 * i, seed=i, keys=i == 1), layout)
            for i, layout in enumerate(["compact", "indent", "jsonl"])]
    calls = []
    serial = prepare_files(days, tmp_path / "serial", workers=1)
    parallel = prepare_files(days + days[:1], tmp_path / "parallel", workers=2,
                             progress_callback=lambda path, n: calls.append(n))
    assert sorted(calls) == [1, 2, 3]
    assert [r.path for r in parallel] == [str(d) for d in days + days[:1]]
    for one, two, day in zip(serial, parallel, days):
        assert (one.n_sessions, one.n_events) == (two.n_sessions, two.n_events)
        a, b = (day_arrays(cache_dir_for(day, root))
                for root in (tmp_path / "serial", tmp_path / "parallel"))
        assert a.keys() == b.keys()
        for name in a:
            assert np.array_equal(a[name], b[name]) if name != "services" else a[name] == b[name]


def test_parallel_strict_failure_raises_the_data_error(tmp_path):
    sessions = make_sessions(5)
    sessions[2]["event_sequence"] = []
    days = [write_day(tmp_path / f"d{i}.json", sessions if i else make_sessions(5))
            for i in range(2)]
    with pytest.raises(DataError) as caught:
        prepare_files(days, tmp_path / "cache", workers=2, strict=True)
    assert caught.value.index == 2 and caught.value.file == str(days[1])


def test_an_edit_in_place_with_the_same_size_and_mtime_is_noticed(tmp_path):
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    assert not prepare_files([day], tmp_path / "cache")[0].skipped
    old_first = int(open_prepared(cache_dir_for(day, tmp_path / "cache")).events[0])
    before = day.stat()
    data = bytearray(day.read_bytes())
    first_event = data.index(b'"event_sequence": [') + len(b'"event_sequence": [')
    data[first_event] = ord("7") if data[first_event] != ord("7") else ord("8")
    day.write_bytes(bytes(data))                       # same size, one event changed
    os.utime(day, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert day.stat().st_size == before.st_size and day.stat().st_mtime_ns == before.st_mtime_ns
    assert not is_prepared_and_fresh(day, tmp_path / "cache")
    redone = prepare_files([day], tmp_path / "cache")[0]
    assert not redone.skipped
    assert int(open_prepared(cache_dir_for(day, tmp_path / "cache")).events[0]) != old_first
    assert prepare_files([day], tmp_path / "cache")[0].skipped


def test_a_cache_from_before_signatures_is_prepared_again(tmp_path):
    day = write_day(tmp_path / "data" / "a.json", make_sessions(5))
    prepare_files([day], tmp_path / "cache")
    meta_path = cache_dir_for(day, tmp_path / "cache") / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["source"] = {key: meta["source"][key] for key in ("name", "path", "size", "mtime_ns")}
    meta_path.write_text(json.dumps(meta))
    assert not prepare_files([day], tmp_path / "cache")[0].skipped
