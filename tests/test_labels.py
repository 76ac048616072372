"""Label files: spreadsheet exports read as they are, bad ones give one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.data.labels import read_labels, write_labels
from radar.errors import DataError

DAY = "preprocessed_logs_2025-01-01.json"


def test_an_excel_export_with_bom_and_crlf_reads_like_plain_csv(tmp_path):
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    write_labels(plain, [(DAY, 1, 0), (DAY, 2, 1)])
    excel.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    assert read_labels(excel).by_file_session == read_labels(plain).by_file_session == {
        (DAY, 1): 0, (DAY, 2): 1}
    block = tmp_path / "anomaly_label.csv"
    block.write_bytes(b"\xef\xbb\xbfBlockId,Label\r\nblk_1,Anomaly\r\nblk_2,Normal\r\n")
    assert read_labels(block).by_key == {"blk_1": 1, "blk_2": 0}


@pytest.mark.parametrize("content", [b"\x00\x01\x02\xff\xfe binary", b"\xff\xfef\x00i\x00",
                                     b"file,session_id,label\n\x80\x81,1,0\n"])
def test_a_binary_label_file_is_one_clear_error(tmp_path, content):
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="is not UTF-8 text"):
        read_labels(path)


def test_conflicting_rows_for_one_session_are_refused(tmp_path):
    path = tmp_path / "labels.csv"
    write_labels(path, [(DAY, 1, 0), (DAY, 2, 1), (DAY, 1, 1)])
    with pytest.raises(DataError, match=f"record 4: session 1 of {DAY} is labelled 1 here but "
                                        "0 in record 2"):
        read_labels(path)
    write_labels(path, [(DAY, 1, 0), (DAY, 1, 0)])          # a repeat that agrees is fine
    assert read_labels(path).by_file_session == {(DAY, 1): 0}
    block = tmp_path / "block.csv"
    block.write_text("BlockId,Label\nblk_1,Normal\nblk_1,Anomaly\n")
    with pytest.raises(DataError, match="'blk_1' is labelled 1"):
        read_labels(block)


def test_a_labelled_session_id_twice_in_a_day_is_refused_not_joined(tmp_path):
    path = tmp_path / "labels.csv"
    write_labels(path, [(DAY, 1, 0), (DAY, 2, 1)])
    table = read_labels(path)
    assert table.lookup(DAY, np.array([1, 2, 3, 3])).tolist() == [0, 1, -1, -1]
    with pytest.raises(DataError, match=f"session_id 2 occurs 2 times in {DAY}"):
        table.lookup(DAY, np.array([1, 2, 2]))


def test_binary_input_to_convert_is_one_clear_line(tmp_path):
    binary = tmp_path / "normal"
    binary.write_bytes(b"1 2 3\n\xff\xfe\x00\x81\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["convert", "deeplog", "--normal", str(binary), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "record 2: the key-sequence file is not UTF-8 text" in result.stderr
    result = runner.invoke(cli, ["convert", "hdfs-100k", str(binary), "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output


def _results(path, ids: list[int]) -> str:
    import json

    records = [{"file": DAY, "session_id": sid, "service_name": "gateway",
                "anomaly_score": i / 10, "is_anomaly": i > 5, "threshold": 0.55,
                "has_error": False} for i, sid in enumerate(ids)]
    path.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    return str(path)


def test_evaluate_shows_partial_label_coverage_in_its_table(tmp_path):
    labels = tmp_path / "labels.csv"
    write_labels(labels, [(DAY, i, int(i > 6)) for i in range(6)] + [(DAY, 9, 1)])
    results = _results(tmp_path / "r.json", list(range(10)))
    out = CliRunner().invoke(cli, ["evaluate", "--results", results, "--labels", str(labels)],
                             terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "3 of 10 sessions have no label" in " ".join(out.output.split())


def test_evaluate_refuses_labels_it_cannot_join_on_repeated_session_ids(tmp_path):
    labels = tmp_path / "labels.csv"
    write_labels(labels, [(DAY, i, i % 2) for i in range(4)])
    results = _results(tmp_path / "r.json", [0, 1, 2, 2, 3])
    out = CliRunner().invoke(cli, ["evaluate", "--results", results, "--labels", str(labels)])
    assert out.exit_code == 1 and isinstance(out.exception, SystemExit), out.output
    assert "session_id 2 occurs 2 times" in out.stderr
