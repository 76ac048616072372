"""The synthetic generator: determinism, the user's exact format, labels, realism knobs."""

from __future__ import annotations

import csv
import json
import statistics
from collections import Counter
from pathlib import Path

import pytest

from radar.data.reader import iter_sessions
from radar.data.records import ALL_FIELDS, ReadReport
from radar.data.synth import (
    ANOMALY_KINDS,
    RELEASE_KEY,
    TEMPLATES,
    generate,
    read_ground_truth,
)
from radar.errors import RadarError

FIELDS = ["session_id", "event_sequence", "token_ids", "attention_mask", "has_error",
          "has_warn", "service_name", "original_logs"]
ANOMALY_ONLY_IDS = {t.id for t in TEMPLATES.values() if t.service == "anomaly"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, days=2, sessions=1500, anomaly_rate=0.1, seed=7)
    records = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in summary.files}
    return summary, records, read_ground_truth(summary.labels_path)


def _all(records):
    return [r for day in records.values() for r in day]


def test_same_seed_gives_identical_bytes(tmp_path):
    a = generate(tmp_path / "a", days=2, sessions=150, seed=3)
    b = generate(tmp_path / "b", days=2, sessions=150, seed=3)
    c = generate(tmp_path / "c", days=2, sessions=150, seed=4)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == ["labels.csv", "preprocessed_logs_2025-02-24.json",
                     "preprocessed_logs_2025-02-25.json", "templates.tsv"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.files[0].read_bytes() != c.files[0].read_bytes()
    assert a.to_dict()["kinds"] == b.to_dict()["kinds"]


def test_files_are_exactly_json_dump_of_the_session_list(synth):
    summary, records, _ = synth
    for path in summary.files:
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(records[path.name], ensure_ascii=False)
        assert "\\u" not in text            # Korean stays UTF-8, as ensure_ascii=False writes it


def test_every_record_has_the_user_format(synth):
    _, records, _ = synth
    for day in records.values():
        assert [r["session_id"] for r in day] == list(range(len(day)))
        for r in day:
            assert list(r) == FIELDS
            events, tokens, mask = r["event_sequence"], r["token_ids"], r["attention_mask"]
            assert all(isinstance(e, int) and e > 0 for e in events)
            assert len(tokens) == len(mask) == 512
            body = events[:510]
            n = len(body) + 2
            assert tokens == [101, *body, 102] + [0] * (512 - n)
            assert mask == [1] * n + [0] * (512 - n)
            assert len(r["original_logs"]) == len(events)
            levels = {line.split()[2] for line in r["original_logs"]}
            assert r["has_error"] == ("ERROR" in levels)
            assert r["has_warn"] == ("WARN" in levels)
            assert f"[{r['service_name']}," in r["original_logs"][0]


def test_no_pad_pads_to_the_longest_session_of_each_file(tmp_path):
    summary = generate(tmp_path, days=1, sessions=300, seed=1, padded=False, max_len=64)
    day = json.loads(summary.files[0].read_text(encoding="utf-8"))
    width = min(64, max(len(r["event_sequence"]) for r in day) + 2)
    assert {len(r["token_ids"]) for r in day} == {width}
    long = [r for r in day if len(r["event_sequence"]) > 62]
    assert long and all(r["token_ids"][-1] == 102 and r["token_ids"][1:63] ==
                        r["event_sequence"][:62] for r in long)
    assert summary.n_over_max_len == len(long)


def test_labels_join_every_session_and_kinds_are_known(synth):
    summary, records, labels = synth
    keys = {(name, r["session_id"]) for name, day in records.items() for r in day}
    assert set(labels) == keys
    with summary.labels_path.open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == ["file", "session_id", "label", "anomaly_kind"]
    for label, kind in labels.values():
        assert (label == 1) == (kind != "")
        assert kind == "" or kind in ANOMALY_KINDS


def test_anomaly_rate_and_kinds(synth, tmp_path):
    summary, _, labels = synth
    rate = summary.n_anomalies / summary.n_sessions
    assert 0.08 < rate < 0.12
    kinds = Counter(kind for _, kind in labels.values() if kind)
    assert set(kinds) == set(ANOMALY_KINDS)
    assert min(kinds.values()) > 0.4 * max(kinds.values())     # no kind dominates
    clean = generate(tmp_path, days=1, sessions=300, anomaly_rate=0.0, seed=2)
    assert clean.n_anomalies == 0


def test_service_mix_is_uneven_with_gateway_largest(synth):
    summary, records, _ = synth
    services = Counter(r["service_name"] for r in _all(records))
    assert len(services) >= 4
    assert services.most_common(1)[0][0] == "gateway"
    assert services == summary.services


def test_lengths_are_long_tailed(tmp_path):
    summary = generate(tmp_path, days=1, sessions=6000, seed=0)
    day = json.loads(summary.files[0].read_text(encoding="utf-8"))
    lengths = sorted(len(r["event_sequence"]) for r in day)
    assert 5 <= statistics.median(lengths) <= 60
    assert sum(5 <= n <= 60 for n in lengths) > 0.75 * len(lengths)
    assert lengths[-1] > 300
    assert summary.max_events == lengths[-1]


def test_has_error_is_only_a_weak_label(synth):
    _, records, labels = synth
    rows = [(labels[(name, r["session_id"])][0], r["has_error"], r["has_warn"])
            for name, day in records.items() for r in day]
    assert any(label == 0 and err for label, err, _ in rows)       # benign client errors
    assert any(label == 1 and not err for label, err, _ in rows)   # silent anomalies
    assert any(label == 0 and warn for label, _, warn in rows)     # slow queries, retries


def test_anomaly_only_templates_never_appear_in_normal_sessions(synth):
    _, records, labels = synth
    seen_normal, seen_unseen_kind = set(), set()
    for name, day in records.items():
        for r in day:
            label, kind = labels[(name, r["session_id"])]
            if label == 0:
                seen_normal.update(r["event_sequence"])
            elif kind == "unseen_event":
                seen_unseen_kind.update(set(r["event_sequence"]) & ANOMALY_ONLY_IDS)
    assert not seen_normal & ANOMALY_ONLY_IDS
    assert seen_unseen_kind
    # Raw ids 101/102 occur as events, colliding with CLS/SEP in token_ids as in real data.
    assert {101, 102} <= seen_normal


def test_templates_tsv_lists_every_event(synth):
    summary, records, _ = synth
    lines = summary.templates_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "event_id\tservice\tlevel\ttemplate"
    ids = {int(line.split("\t")[0]) for line in lines[1:]}
    assert ids == {t.id for t in TEMPLATES.values() if t.key != RELEASE_KEY}
    assert {e for r in _all(records) for e in r["event_sequence"]} <= ids


def test_a_release_adds_a_new_line_to_the_last_afternoon_only(tmp_path):
    plain = generate(tmp_path / "plain", days=2, sessions=400, anomaly_rate=0.05, seed=3)
    released = generate(tmp_path / "rel", days=2, sessions=400, anomaly_rate=0.05, seed=3,
                        release=0.2)
    new = TEMPLATES[RELEASE_KEY].id
    assert plain.files[0].read_bytes() == released.files[0].read_bytes()
    day = json.loads(released.files[1].read_text(encoding="utf-8"))
    before = json.loads(plain.files[1].read_text(encoding="utf-8"))
    carrying = [r for r in day if new in r["event_sequence"]]
    assert len(carrying) == 80                               # 20% of the day
    assert all(r["original_logs"][0][11:13] >= "12" or new == r["event_sequence"][0]
               for r in carrying)
    for after, was in zip(day, before):                      # nothing else moved
        assert [e for e in after["event_sequence"] if e != new] == was["event_sequence"]
    assert plain.labels_path.read_bytes() == released.labels_path.read_bytes()
    assert str(new) in released.templates_path.read_text(encoding="utf-8")
    with pytest.raises(RadarError, match="release must lie in"):
        generate(tmp_path / "bad", days=1, sessions=10, release=0.9)


def test_raw_lines_carry_some_non_ascii(synth):
    _, records, _ = synth
    assert any(any(ord(ch) > 127 for ch in line)
               for r in _all(records) for line in r["original_logs"])


@pytest.mark.parametrize("kwargs", [{"days": 0}, {"sessions": 0}, {"anomaly_rate": 1.5},
                                    {"max_len": 2}, {"start_date": "24/02/2025"},
                                    {"drift": -0.1}])
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs):
    with pytest.raises(RadarError):
        generate(tmp_path, **kwargs)


def test_every_record_passes_the_streaming_reader_in_strict_mode(synth):
    summary, records, _ = synth
    for path in summary.files:
        report = ReadReport()
        read = list(iter_sessions(path, fields=ALL_FIELDS, strict=True, report=report))
        assert [r["session_id"] for r in read] == [r["session_id"] for r in records[path.name]]
        assert [r["event_sequence"] for r in read] == \
            [r["event_sequence"] for r in records[Path(path).name]]
        assert read[5]["original_logs"] == records[path.name][5]["original_logs"]
        assert report.n_bad == 0 and not report.notices.get("original_logs_invalid_utf8")


def _service_shares(path: Path) -> Counter:
    day = json.loads(path.read_text(encoding="utf-8"))
    counts = Counter(r["service_name"] for r in day)
    return Counter({service: n / len(day) for service, n in counts.items()})


def test_drift_moves_later_days_deterministically_within_the_grammar(tmp_path):
    plain = generate(tmp_path / "plain", days=4, sessions=1500, seed=2)
    drift = generate(tmp_path / "drift", days=4, sessions=1500, seed=2, drift=0.5)
    again = generate(tmp_path / "again", days=4, sessions=1500, seed=2, drift=0.5)
    assert [f.read_bytes() for f in drift.files] == [f.read_bytes() for f in again.files]
    assert drift.files[0].read_bytes() == plain.files[0].read_bytes()   # day one is day one
    # The last day's traffic mix moved well past sampling noise (a few points).
    before, after = _service_shares(plain.files[-1]), _service_shares(drift.files[-1])
    moved = sum(abs(before[s] - after[s]) for s in before | after) / 2
    assert moved > 0.08
    # Same grammar: normal sessions still never log an anomaly-only template.
    truth = read_ground_truth(drift.labels_path)
    for path in drift.files:
        for r in json.loads(path.read_text(encoding="utf-8")):
            if truth[(path.name, r["session_id"])][0] == 0:
                assert not ANOMALY_ONLY_IDS & set(r["event_sequence"])
