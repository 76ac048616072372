"""The reader's speed paths change nothing it returns (radar.data.reader, issue #15).

Two shortcuts are checked against the plain way: cutting the zero padding out of token
lists nobody asked for before decoding, and finding record starts by their ``{``.
"""

from __future__ import annotations

import json

import pytest
from test_reader import dump_sessions, make_sessions, write_day

from radar.data import reader
from radar.data.reader import DEFAULT_FIELDS, TOKEN_FIELDS, iter_sessions
from radar.data.records import ReadReport
from radar.errors import DataError

FIELD_SETS = [DEFAULT_FIELDS, DEFAULT_FIELDS + ("token_ids",),
              DEFAULT_FIELDS + ("attention_mask",), DEFAULT_FIELDS + TOKEN_FIELDS]
ZEROS = ", 0" * 40


def outcome(path, fields) -> tuple:
    """Everything a read gives back: records, counts, bad records, the error if any."""
    report, records, error = ReadReport(), [], None
    try:
        records.extend(iter_sessions(path, fields=fields, report=report))
    except DataError as caught:
        error = str(caught)
    bad = [(example.index, example.offset, example.kind) for example in report.examples]
    return records, report.n_records, report.n_bad, dict(report.notices), bad, error


def plain_outcome(path, fields, monkeypatch) -> tuple:
    """The same read with the padding cut turned off."""
    with monkeypatch.context() as patch:
        patch.setattr(reader, "_PAD_KEYS", {})
        return outcome(path, fields)


def tricky_sessions() -> list[dict]:
    """Padded sessions plus zero runs where they must stay: in strings, in the event
    sequence, under keys that only end in ``token_ids``, in nested lists."""
    sessions = make_sessions(40, seed=3, padded_to=64)
    sessions[1]["service_name"] = '"token_ids": [5' + ZEROS + "]"
    sessions[2]["event_sequence"] = [7] + [0] * 40
    sessions[3]['x"token_ids'] = [1] + [0] * 40
    sessions[4]["token_ids"] = [[1] + [0] * 30, 5] + [0] * 20
    sessions[5]["original_logs"] = ['"attention_mask": [9' + ZEROS + "]"]
    sessions[6]["attention_mask"] = [0] * 64
    sessions[7]["token_ids"] = "not a list" + ZEROS
    return sessions


@pytest.mark.parametrize("fields", FIELD_SETS)
def test_cutting_padding_changes_no_record(tmp_path, monkeypatch, fields):
    path = write_day(tmp_path / "day.json", tricky_sessions(), "compact")
    cut = outcome(path, fields)
    assert cut == plain_outcome(path, fields, monkeypatch)
    records = cut[0]
    assert records[1]["service_name"] == '"token_ids": [5' + ZEROS + "]"
    assert records[2]["event_sequence"] == [7] + [0] * 40
    if "token_ids" in fields:
        assert records[0]["token_ids"][-1] == 0 and len(records[0]["token_ids"]) == 64


@pytest.mark.parametrize("unwanted", [TOKEN_FIELDS, ("token_ids",), ("attention_mask",)])
def test_padding_is_cut_where_it_may_be(tmp_path, unwanted):
    sessions = make_sessions(3, seed=1, padded_to=64)
    data = bytearray(dump_sessions(sessions, "compact"))
    keys = tuple(reader._PAD_KEYS[name] for name in unwanted)
    holes = reader._padding_holes(data, 0, len(data), keys)
    # token_ids with the mask after it go in one cut; either list alone, one cut each
    assert len(holes) == 3
    kept, position = [], 0
    for start, end in holes:
        kept.append(bytes(data[position:start]))
        position = end
    cut = json.loads(b"".join(kept) + bytes(data[position:]))
    for before, after in zip(sessions, cut):
        for name in TOKEN_FIELDS:
            if name not in unwanted:
                assert after[name] == before[name]
            elif name == "token_ids" or "token_ids" not in unwanted:
                assert after[name] == before[name][:len(before["event_sequence"]) + 2]
            else:
                assert name not in after            # the mask went with the token padding
        assert {k: v for k, v in after.items() if k not in TOKEN_FIELDS} == {
            k: v for k, v in before.items() if k not in TOKEN_FIELDS}


@pytest.mark.parametrize("damage", [
    (ZEROS + "]", ZEROS + ",]"),               # a trailing comma after the padding
    (ZEROS + "]", ZEROS[:-1] + "]"),           # a run that is not whole ", 0"s
    (ZEROS + "]", ZEROS + " x]"),              # junk after the padding
    (', "attention_mask": [1', ', "attention_mask": [01'),   # a leading zero before it
    ('"attention_mask": [0, 0', '"attention_mask": [, 0'),   # nothing before the run
    ('"attention_mask": [1, 1', '"attention_mask": [1, 1,'),  # a mask cut with the tokens
    ('"attention_mask": [1, 1', '"attention_mask": [1 1'),
])
def test_damaged_padded_lists_fail_as_before(tmp_path, monkeypatch, damage):
    sessions = make_sessions(30, seed=4, padded_to=64)
    sessions[12]["attention_mask"] = [0] * 64
    text = json.dumps(sessions, ensure_ascii=False)
    old, new = damage
    first = text.index(old, text.index('"session_id": 12'))
    text = text[:first] + new + text[first + len(old):]
    path = tmp_path / "day.json"
    path.write_text(text, encoding="utf-8")
    cut = outcome(path, DEFAULT_FIELDS)
    assert cut == plain_outcome(path, DEFAULT_FIELDS, monkeypatch)
    assert cut[5] is not None or cut[2] > 0     # the damage is reported, not read past

