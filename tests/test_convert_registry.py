"""Input formats are a registry: radar convert lists them, a plugin adds one (register_converters)."""

from __future__ import annotations

from click.testing import CliRunner
from test_plugin_docs import example_manager

from radar import plugins
from radar.cli import cli
from radar.data.convert import HDFS100kConverter, KeySequenceConverter
from radar.data.labels import read_labels
from radar.data.reader import iter_sessions


def test_the_built_in_formats_are_registered_and_listed():
    assert plugins.make_plugin_manager().converters() == {
        "hdfs-100k": HDFS100kConverter, "deeplog": KeySequenceConverter}
    result = CliRunner().invoke(cli, ["convert", "--help"])
    assert result.exit_code == 0 and "deeplog" in result.output and "hdfs-100k" in result.output


def test_an_unknown_format_names_the_registered_ones():
    result = CliRunner().invoke(cli, ["convert", "parquet", "--out", "x"])
    assert result.exit_code == 2
    assert "unknown input format 'parquet'; available: deeplog, hdfs-100k" in result.output


def test_the_docs_example_plugin_adds_a_working_format(tmp_path, monkeypatch):
    pm = example_manager("register_converters")
    monkeypatch.setattr(plugins, "_default", pm)
    source = tmp_path / "rows.csv"
    source.write_text("0,5 6 7\n0,5 6\n1,9 9 9\n0,5 6 7\n")
    result = CliRunner().invoke(cli, ["convert", "csv-keys", str(source), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    days = sorted((tmp_path / "out").glob("preprocessed_logs_*.json"))
    assert [len(list(iter_sessions(day))) for day in days] == [2, 2]
    labels = read_labels(tmp_path / "out" / "labels.csv").by_file_session
    assert sorted(labels.values()) == [0, 0, 0, 1]
