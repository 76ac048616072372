"""radar.source: linking templates and raw lines, the incremental index, the CLI, and the
``source`` that result records and the HTML report carry."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

pytest.importorskip("tree_sitter")

from click.testing import CliRunner

from radar.cli import cli
from radar.errors import RadarError
from radar.source.annotate import annotate_explanations, load_linker
from radar.source.extract import ExtractOptions
from radar.source.index import build_index, read_index
from radar.source.link import SourceIndex, SourceLinker, source_of
from radar.source.match import align_score, log_pieces, tokenize

STORE = """\
public class BlockStore {
    void receive(Block block, String src, long size) {
        LOG.info("Receiving block " + block + " src: " + src);
        LOG.info("Received block " + block + " of size " + size + " from " + src);
        LOG.warn("Deleting block " + block + " file " + file);
        LOG.info("Received block " + block + " src: " + src + " of size " + size);
    }
    void ship(Block block) {
        LOG.error("Error: " + reason);
    }
}
"""
QUEUE = """\
import logging
log = logging.getLogger(__name__)

def drain(queue, n):
    log.info("queue %s drained, %d messages left", queue, n)
"""


@pytest.fixture()
def source_tree(tmp_path):
    src = tmp_path / "src"
    (src / "store").mkdir(parents=True)
    (src / "store" / "BlockStore.java").write_text(STORE)
    (src / "queue.py").write_text(QUEUE)
    return src


@pytest.fixture()
def linker(source_tree, tmp_path):
    build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    return SourceLinker(SourceIndex.load(tmp_path / "index.jsonl"))


def _where(link):
    return None if link.statement is None else (link.statement["file"],
                                                link.statement["line"])


@pytest.mark.parametrize(("template", "expected"), [
    ("Receiving block <*> src: /<*>", ("store/BlockStore.java", 3)),
    ("Received block blk_<*> of size <*> from /<*>", ("store/BlockStore.java", 4)),
    ("Received block <NUM> src: <IP> of size <NUM>", ("store/BlockStore.java", 6)),
    ("Deleting block <*> file <*>", ("store/BlockStore.java", 5)),
    ("queue <*> drained, <*> messages left", ("queue.py", 5)),
])
def test_templates_link_to_their_statement(linker, template, expected):
    link = linker.link_template(template)
    assert _where(link) == expected
    assert link.score >= 0.9
    assert link.runner_up is None or link.runner_up_score < link.score


@pytest.mark.parametrize("template", [
    "Disk quota exceeded on volume <*> by user <*>",
    "instruction cache parity error corrected",
    "Error connecting to <*> after <*> retries: connection refused by peer",
])
def test_templates_nothing_prints_say_no_match(linker, template):
    link = linker.link_template(template)
    assert link.statement is None and link.score < 0.6


def test_raw_lines_link_through_the_line_format(linker):
    line = ("081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block "
            "blk_-1608999687919862906 src: /10.250.19.102:54106")
    link = linker.link_line(line)
    assert _where(link) == ("store/BlockStore.java", 3) and link.score == 1.0
    # No format fits: the whole line is the message; numbers only differ: one match.
    assert _where(linker.link_line("queue jobs-7 drained, 12 messages left")) == ("queue.py", 5)
    assert _where(linker.link_line("queue jobs-8 drained, 99 messages left")) == ("queue.py", 5)


@pytest.mark.parametrize("line", [
    "INFO:root:queue jobs-7 drained, 12 messages left",
    ("2024-05-01 12:00:00.008 2931 WARNING app.queue.worker [req-1f2e - - -] queue q drained, "
     "0 messages left"),
    "2015-07-29 17:41:44,747 - INFO  [main:Queue@78] - queue q drained, 3 messages left",
    "12:00:01.123 INFO [pool-2] c.a.Queue - [job: 7f] queue q drained, 3 messages left",
])
def test_raw_lines_of_other_formats(linker, line):
    """Headers with a level word, thread and logger fields, and a leading [context] that a
    logging framework adds, are not part of the message."""
    link = linker.link_line(line)
    assert _where(link) == ("queue.py", 5) and link.score == 1.0


def test_template_with_framework_context(linker):
    assert _where(linker.link_template("[instance: <*>] Deleting block <*> file <*>")) == (
        "store/BlockStore.java", 5)


def test_generic_statement_does_not_swallow_long_text():
    short = tokenize(["Error: ", None])
    exact = tokenize(log_pieces("Error: <*>"))
    prose = tokenize(log_pieces("Error: the replica on the remote rack has gone away"))
    assert align_score(short, exact)[0] == 1.0
    assert align_score(short, prose)[0] < 0.6


def test_reindex_parses_only_changed_files(source_tree, tmp_path):
    out = tmp_path / "index.jsonl"
    first = build_index([source_tree], out, ExtractOptions())
    assert (first.files, first.parsed, first.statements) == (2, 2, 6)
    again = build_index([source_tree], out, ExtractOptions())
    assert (again.parsed, again.reused) == (0, 2)
    queue = source_tree / "queue.py"
    queue.write_text(QUEUE + '    log.warning("queue %s is stuck", queue)\n')
    os.utime(queue, ns=(1, 10**18))
    changed = build_index([source_tree], out, ExtractOptions())
    assert (changed.parsed, changed.reused, changed.statements) == (1, 1, 7)
    (source_tree / "store" / "BlockStore.java").unlink()
    assert build_index([source_tree], out, ExtractOptions()).statements == 2
    # Other logger names: every file is parsed again.
    assert build_index([source_tree], out, ExtractOptions(loggers=("audit",))).parsed == 1


def test_damaged_index_names_the_fix(tmp_path):
    bad = tmp_path / "index.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(RadarError, match="radar source index"):
        SourceIndex.load(bad)
    with pytest.raises(RadarError, match="no such source index"):
        SourceIndex.load(tmp_path / "missing.jsonl")


def test_cli_index_and_match(source_tree, tmp_path):
    runner = CliRunner()
    index = tmp_path / "index.jsonl"
    result = runner.invoke(cli, ["source", "index", str(source_tree), "--out", str(index)])
    assert result.exit_code == 0, result.output
    assert "6 (java 5, python 1)" in result.output
    templates = tmp_path / "templates.tsv"
    templates.write_text("event_id\ttemplate\n1\tDeleting block <*> file <*>\n"
                         "2\tDisk quota exceeded on volume <*> by user <*>\n")
    result = runner.invoke(cli, ["source", "match", "--index", str(index), "--templates",
                                 str(templates), "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["event_id"], r["file"], r["line"], r["function"], r["level"]) for r in rows] == [
        ("1", "store/BlockStore.java", 5, "receive", "warn"), ("2", None, None, None, None)]
    assert rows[0]["score"] == 1.0 and rows[1]["score"] < 0.6
    lines = tmp_path / "app.log"
    lines.write_text("2024-05-01 12:00:00,123 INFO queue a drained, 3 messages left\n")
    result = runner.invoke(cli, ["source", "match", "--index", str(index), "--lines",
                                 str(lines), "--json"])
    assert json.loads(result.output)["file"] == "queue.py"
    result = runner.invoke(cli, ["source", "match", "--index", str(index)])
    assert result.exit_code == 1
    assert "exactly one of --templates FILE or --lines FILE" in result.output


def _records():
    flagged = {"file": "day.json", "session_id": 3, "is_anomaly": True, "top_positions": [
        {"position": 0, "event_id": 1, "kind": "event", "rank": 9, "probability": 0.01},
        {"position": 1, "event_id": 7, "kind": "unseen", "rank": None, "probability": None},
        {"position": 2, "event_id": None, "kind": "end", "rank": None, "probability": None}]}
    normal = {"file": "day.json", "session_id": 4, "is_anomaly": False, "top_positions": [
        {"position": 0, "event_id": 1, "kind": "event", "rank": 1, "probability": 0.9}]}
    return [flagged, normal]


def test_annotate_explanations_adds_source_and_code(source_tree, tmp_path):
    build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    (tmp_path / "templates.tsv").write_text("event_id\ttemplate\n1\tDeleting block <*> file <*>\n")
    linker = load_linker(tmp_path / "index.jsonl", tmp_path / "templates.tsv")
    asked = []

    def logs_for(record):
        asked.append(record["session_id"])
        return ["x", "2024-05-01 12:00:00,123 INFO queue q1 drained, 0 messages left"]

    flagged, normal = annotate_explanations(_records(), linker, logs_for=logs_for)
    by_template, by_line, end = flagged["top_positions"]
    assert {k: by_template["source"][k] for k in ("file", "line", "function", "level")} == {
        "file": "store/BlockStore.java", "line": 5, "function": "receive", "level": "warn"}
    assert by_template["source"]["statement"].startswith('LOG.warn("Deleting block "')
    code = by_template["source"]["code"]
    assert [line["line"] for line in code if line["focus"]] == [5]
    assert "Deleting block" in code[2]["text"]
    assert by_line["source"]["file"] == "queue.py"       # event 7 has no template: its line
    assert "source" not in end
    assert asked == [3]                                  # day files read for flagged only
    assert normal["top_positions"][0]["source"]["line"] == 5
    assert "code" not in normal["top_positions"][0]["source"]


def test_report_shows_the_code_of_linked_events(source_tree, tmp_path):
    from radar.report.html import _top_html

    build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    (tmp_path / "templates.tsv").write_text("event_id\ttemplate\n1\tDeleting block <*> file <*>\n")
    record = next(annotate_explanations(_records()[:1], load_linker(
        tmp_path / "index.jsonl", tmp_path / "templates.tsv")))
    html = _top_html([dict(record, service_name="hdfs", anomaly_score=3.0,
                           log_excerpt=None)])
    assert "store/BlockStore.java:5 in receive" in html
    assert textwrap.dedent("""LOG.warn(&quot;Deleting block &quot;""") in html


def test_annotate_from_config_reads_templates_and_day_files(source_tree, tmp_path):
    from radar.config import SourceConfig
    from radar.data.records import session_record
    from radar.source.annotate import annotate_from_config

    records = _records()
    assert annotate_from_config(records, SourceConfig()) is records      # no index: no change
    build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    data = tmp_path / "data"
    data.mkdir()
    (data / "templates.tsv").write_text("event_id\ttemplate\n1\tDeleting block <*> file <*>\n")
    day = [session_record(3, [1, 7], service="hdfs", original_logs=[
        "081109 203518 143 INFO dfs.FSDataset: Deleting block blk_1 file /d/blk_1",
        "081109 203519 143 INFO dfs.DataNode: Receiving block blk_1 src: /10.0.0.1:5"])]
    (data / "day.json").write_text(json.dumps(day))
    section = SourceConfig(index=str(tmp_path / "index.jsonl"))
    flagged, _ = annotate_from_config(_records(), section, data_dir=data)
    by_template, by_line, _ = flagged["top_positions"]
    assert by_template["source"]["line"] == 5
    assert (by_line["source"]["file"], by_line["source"]["line"]) == ("store/BlockStore.java", 3)


def test_a_flagged_event_whose_template_links_nowhere_falls_back_to_its_line(
        source_tree, tmp_path):
    build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    (tmp_path / "templates.tsv").write_text("event_id\ttemplate\n1\t<*> <*> <*>\n")
    linker = load_linker(tmp_path / "index.jsonl", tmp_path / "templates.tsv")
    record = {"file": "d.json", "session_id": 1, "is_anomaly": True, "top_positions": [
        {"position": 0, "event_id": 1, "kind": "event", "rank": 5, "probability": 0.1}]}
    line = "2024-05-01 12:00:00,123 INFO queue q drained, 0 messages left"
    (annotated,) = annotate_explanations([record], linker, logs_for=lambda r: [line])
    assert annotated["top_positions"][0]["source"]["file"] == "queue.py"
    (unlinked,) = annotate_explanations([dict(record, top_positions=[
        {"position": 0, "event_id": 1, "kind": "event"}])], linker, logs_for=lambda r: ["?"])
    assert unlinked["top_positions"][0]["source"] is None            # says so, no guess


def test_source_config_section():
    from radar.config import load_config
    from radar.errors import ConfigError

    section = load_config(None, ["source.index=idx.jsonl", "source.wrappers=notify:warn"]).source
    assert (section.index, section.wrappers, section.min_score) == ("idx.jsonl",
                                                                  ["notify:warn"], 0.6)
    with pytest.raises(ConfigError, match="source.min_score"):
        load_config(None, ["source.min_score=1.5"])


def test_a_file_the_extractor_cannot_read_is_listed_not_fatal(source_tree, tmp_path,
                                                              monkeypatch):
    from radar.source.lang_python import PythonExtractor

    def broken(self, node):
        raise AttributeError("unexpected tree")

    monkeypatch.setattr(PythonExtractor, "log_call", broken)
    summary = build_index([source_tree], tmp_path / "index.jsonl", ExtractOptions())
    assert summary.failed == ["queue.py: AttributeError: unexpected tree"]
    assert summary.statements == 5                       # the Java file is still indexed


def test_match_lines_with_a_backtracking_format_stops_with_one_line(source_tree, tmp_path,
                                                                    monkeypatch):
    """`radar source match --format` runs the user's pattern under the same line deadline
    as ingest and watch (#25)."""
    from radar import deadline

    monkeypatch.setattr(deadline, "LINE_SECONDS", 0.3)
    runner = CliRunner()
    index = tmp_path / "index.jsonl"
    assert runner.invoke(cli, ["source", "index", str(source_tree), "--out",
                               str(index)]).exit_code == 0
    lines = tmp_path / "app.log"
    lines.write_text("a" * 40 + "!\n")
    result = runner.invoke(cli, ["source", "match", "--index", str(index), "--lines",
                                 str(lines), "--format", "(?P<content>(a+)+$)", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{lines}:1: reading this line took over 0.3 s; a --format" in result.output


def test_index_skips_a_file_over_the_size_limit_and_says_so(source_tree, tmp_path):
    """One 50 MB .java file took 52 s and 2.9 GB (#25): files over --max-file-bytes are
    listed, not read; raising the limit parses them on the next run. (A lowered limit
    keeps the test small.)"""
    big = source_tree / "store" / "Generated.java"
    rows = "".join(f'        log.info("generated row {k} of {{}}", id);\n' for k in range(400))
    big.write_text("class Generated {\n    void fill(int id) {\n" + rows + "    }\n}\n")
    size = big.stat().st_size
    runner = CliRunner()
    index = tmp_path / "index.jsonl"
    result = runner.invoke(cli, ["source", "index", str(source_tree), "--out", str(index),
                                 "--max-file-bytes", str(size - 1)])
    assert result.exit_code == 0, result.output
    assert ("warning: 1 file(s) over --max-file-bytes not indexed (first: "
            f"store/Generated.java ({size:,} bytes))") in " ".join(result.output.split())
    _, entries = read_index(index)
    skipped = next(e for e in entries if e["file"] == "store/Generated.java")
    assert skipped["skipped"] and skipped["statements"] == [] and skipped["size"] == size
    assert any(e["statements"] for e in entries if e["file"] == "queue.py")
    result = runner.invoke(cli, ["source", "index", str(source_tree), "--out", str(index),
                                 "--max-file-bytes", str(size)])
    assert result.exit_code == 0 and "over --max-file-bytes" not in result.output
    _, entries = read_index(index)
    parsed = next(e for e in entries if e["file"] == "store/Generated.java")
    assert len(parsed["statements"]) == 400 and not parsed.get("skipped")


def test_template_files_with_a_header_read_the_template_column(tmp_path):
    from radar.source.link import read_templates

    synth = tmp_path / "synth.tsv"
    synth.write_text("event_id\tservice\tlevel\ttemplate\n"
                     "3\tauth\tINFO\tPassword verified for <*>\n"
                     "9\tshared\tERROR\tTimeout\tafter <*>ms\n")
    assert read_templates(synth) == {"3": "Password verified for <*>",
                                     "9": "Timeout\tafter <*>ms"}
    plain = tmp_path / "ingest.tsv"
    plain.write_text("event_id\ttemplate\n7\tBlock <*> received\n8\tx\n")
    assert read_templates(plain) == {"7": "Block <*> received", "8": "x"}
    bad = tmp_path / "bad.tsv"
    bad.write_text("event_id\tservice\n1\tauth\n")
    with pytest.raises(RadarError, match="names no `template` column"):
        read_templates(bad)
    short = tmp_path / "short.tsv"
    short.write_text("event_id\tservice\tlevel\ttemplate\n1\tauth\n")
    with pytest.raises(RadarError, match="line 2"):
        read_templates(short)


def test_the_demo_source_tree_links_every_template(tmp_path):
    from radar.data.synth import generate
    from radar.demo import write_template_source
    from radar.source.link import read_templates

    data = generate(tmp_path / "data", days=1, sessions=20, anomaly_rate=0.1, seed=5)
    write_template_source(data.templates_path, tmp_path / "src")
    index = tmp_path / "index.jsonl"
    build_index([tmp_path / "src"], index, ExtractOptions())
    linker = SourceLinker(SourceIndex.load(index))
    templates = read_templates(data.templates_path)
    linked = {event_id: source_of(linker.link_template(text))
              for event_id, text in templates.items()}
    missing = [event_id for event_id, found in linked.items() if found is None]
    assert not missing, f"templates with no statement: {missing}"
    timeout = next(event_id for event_id, text in templates.items()
                   if text.startswith("Timeout after"))
    assert linked[timeout]["function"] == f"event_{timeout}"
    assert linked[timeout]["level"] == "error"


def test_the_demo_runs_without_source_links_when_the_grammar_is_missing(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from radar.demo import ensure_demo_source
    from radar.source import languages

    def missing(suffix):
        raise RadarError(f"cannot parse {suffix} files: tree_sitter_python is not installed")

    monkeypatch.setattr(languages, "_parser", missing)
    said = []
    config = SimpleNamespace(data=SimpleNamespace(preprocessed_dir=str(tmp_path)))
    assert ensure_demo_source(config, said.append) is None
    assert said == [f"no source links in the demo: {languages.INSTALL_HINT}"]
    assert not list(tmp_path.iterdir())
