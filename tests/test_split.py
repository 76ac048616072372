"""Finding day files and splitting them into train/validation lists."""

from __future__ import annotations

import datetime as dt

import pytest

from radar.data.files import day_of, find_day_files
from radar.data.split import read_file_list, split_files, write_split
from radar.errors import ConfigError, DataError


def _days(tmp_path, n, start=dt.date(2025, 2, 24), suffix=".json"):
    paths = []
    for i in range(n):
        path = tmp_path / f"preprocessed_logs_{start + dt.timedelta(days=i)}{suffix}"
        path.write_text("[]")
        paths.append(path)
    return paths


def test_day_of_parses_the_date_in_the_name():
    assert day_of("x/preprocessed_logs_2025-07-03.json") == dt.date(2025, 7, 3)
    assert day_of("preprocessed_logs.json") is None
    assert day_of("preprocessed_logs_2025-13-40.json") is None


def test_find_day_files_sorts_by_date_and_accepts_jsonl(tmp_path):
    made = _days(tmp_path, 3)
    (tmp_path / "preprocessed_logs_2025-02-23.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("")
    found = find_day_files(tmp_path)
    assert [p.name for p in found] == ["preprocessed_logs_2025-02-23.jsonl",
                                       *[p.name for p in made]]
    assert find_day_files(made[1]) == [made[1]]


def test_find_day_files_errors_name_the_folder_pattern_and_fix(tmp_path):
    with pytest.raises(DataError, match="does not exist.*radar synth"):
        find_day_files(tmp_path / "nope")
    with pytest.raises(DataError) as info:
        find_day_files(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "preprocessed_logs_*.json" in message
    assert "--pattern" in message


def test_date_split_validates_on_the_latest_days(tmp_path):
    files = _days(tmp_path, 10)
    train, val = split_files(list(reversed(files)))
    assert train == files[:9] and val == files[9:]
    train, val = split_files(files, val_fraction=0.3)
    assert train == files[:7] and val == files[7:]
    train, val = split_files(files[:2], val_fraction=0.01)   # at least one of each
    assert train == files[:1] and val == files[1:2]


def test_random_split_is_seeded_and_disjoint(tmp_path):
    files = _days(tmp_path, 20)
    train, val = split_files(files, method="random", seed=1)
    assert len(val) == 2 and len(train) == 18
    assert sorted(train + val) == sorted(files) and not set(train) & set(val)
    assert split_files(files, method="random", seed=1) == (train, val)
    others = {tuple(split_files(files, method="random", seed=s)[1]) for s in range(2, 8)}
    assert len(others) > 1
    assert train == sorted(train, key=day_of)


def test_limit_files_keeps_the_most_recent_days(tmp_path):
    files = _days(tmp_path, 10)
    train, val = split_files(files, limit_files=4)
    assert train == files[6:9] and val == files[9:]
    train, val = split_files(files, limit_files=4, method="random", seed=0)
    assert sorted(train + val) == files[6:]


def test_fewer_than_two_files_is_an_error_naming_the_fix(tmp_path):
    files = _days(tmp_path, 3)
    with pytest.raises(DataError, match="at least 2 day files.*got 1"):
        split_files(files[:1])
    with pytest.raises(DataError, match="--limit-files"):
        split_files(files, limit_files=1)


@pytest.mark.parametrize("kwargs", [{"val_fraction": 0.0}, {"val_fraction": 1.0},
                                    {"method": "time"}, {"limit_files": -1}])
def test_bad_split_options(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        split_files(_days(tmp_path, 3), **kwargs)


def test_write_and_read_back(tmp_path):
    files = _days(tmp_path, 5)
    train, val = split_files(files)
    train_path, val_path = write_split(train, val, tmp_path / "split")
    assert train_path.name == "train_files.txt" and val_path.name == "val_files.txt"
    assert read_file_list(train_path) == [p.resolve() for p in train]
    assert val_path.read_text() == f"{val[0].resolve()}\n"


def test_read_file_list_resolves_relative_entries_and_reports_missing(tmp_path):
    files = _days(tmp_path, 2)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\n\n{files[0].name}\n")
    assert read_file_list(listing) == [tmp_path / files[0].name]
    listing.write_text(f"{files[0]}\n{tmp_path / 'gone_2025-01-01.json'}\n")
    with pytest.raises(DataError, match="1 file.*do not exist.*gone_2025-01-01.json"):
        read_file_list(listing)
    with pytest.raises(DataError, match="does not exist.*radar split"):
        read_file_list(tmp_path / "missing.txt")


def test_a_json_and_jsonl_of_the_same_day_are_refused(tmp_path):
    _days(tmp_path, 2)
    (tmp_path / "preprocessed_logs_2025-02-24.jsonl").write_text("")
    with pytest.raises(DataError, match="preprocessed_logs_2025-02-24.json and "
                                        "preprocessed_logs_2025-02-24.jsonl both hold"):
        find_day_files(tmp_path)


def test_an_impossible_date_in_a_name_is_refused(tmp_path):
    _days(tmp_path, 2)
    (tmp_path / "preprocessed_logs_2025-13-45.json").write_text("[]")
    with pytest.raises(DataError, match="2025-13-45 in the file name is not a real date"):
        find_day_files(tmp_path)


def test_date_split_and_limit_need_a_date_in_every_name(tmp_path):
    files = _days(tmp_path, 3) + [tmp_path / "preprocessed_logs_backup.json"]
    files[-1].write_text("[]")
    with pytest.raises(DataError, match="preprocessed_logs_backup.json has no YYYY-MM-DD"):
        split_files(files)
    with pytest.raises(DataError, match="--limit-files"):
        split_files(files, method="random", limit_files=2)
    train, val = split_files(files, method="random")
    assert len(train) + len(val) == 4
