"""Source linking benchmark: HDFS log templates and raw lines to Hadoop's logging statements.

Indexes ``../shared/data/hadoop_hdfs_src`` (Hadoop HDFS, May 2009) with ``radar.source``
(cold, then unchanged, then with one file touched), links both HDFS template sets
(``hdfs_100k/templates.tsv``, LogHub's ``HDFS_2k.log_templates.csv``) and the 2,000 raw
lines of ``HDFS_2k.log``, and checks every link against :data:`EXPECTED`: the statements
that print each template, found by reading the code (a template printed by several
identical statements accepts any of them). BGL's templates, which no HDFS statement
prints, measure false links. Prints a Markdown table per template and the summary::

    python benchmarks/source_link.py

``--unseen SRC LOG`` adds a check on code and logs the rules were not tuned on, e.g. LogHub's
``Zookeeper_2k.log`` (ZooKeeper 3.4, 2015; log4j names the logging class in each line,
``[thread:Class@line]``) against a ZooKeeper source tree, or ``OpenStack_2k.log`` (nova,
2017; each line names its module's logger) against nova's: the share of lines linked, and
of those, the share linked to the file of the class or module the line names (or to a
statement whose ``logged_at`` is in that file)::

    python benchmarks/source_link.py --unseen zookeeper/ loghub/Zookeeper/Zookeeper_2k.log
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from radar.source.extract import ExtractOptions
from radar.source.index import build_index
from radar.source.link import SourceIndex, SourceLinker, read_templates

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SOURCE = DATA / "hadoop_hdfs_src" / "src"
TEMPLATE_SETS = {"hdfs_100k": DATA / "hdfs_100k" / "templates.tsv",
                 "HDFS_2k": DATA / "loghub_2k" / "HDFS" / "HDFS_2k.log_templates.csv"}
NEGATIVE = DATA / "loghub_2k" / "BGL" / "BGL_2k.log_templates.csv"
RAW = DATA / "loghub_2k" / "HDFS"

_DN = "java/org/apache/hadoop/hdfs/server/datanode/"
_NN = "java/org/apache/hadoop/hdfs/server/namenode/"
# The statements that print each message, read in the 2009 code. Several lines: identical
# statements in different branches. "Served block" is composed into clientTraceFmt in
# DataXceiver.readBlock and printed by BlockSender.java:417; the link names where the text
# is written. "NameSystem.delete: ... invalidSet" is BlockManager.addToInvalidates's message,
# whose prefix this code already calls "NameSystem.addToInvalidates:" (the logs are older).
STATEMENTS = {
    "allocateBlock": {_NN + "FSNamesystem.java:1275"},
    "receiving": {_DN + "DataXceiver.java:240"},
    "received_from": {_DN + "BlockReceiver.java:812", _DN + "BlockReceiver.java:938"},
    "blockMap": {_NN + "BlockManager.java:912"},
    "terminating": {_DN + "BlockReceiver.java:831", _DN + "BlockReceiver.java:997"},
    "verification": {_DN + "DataBlockScanner.java:445"},
    "writeBlock_exception": {_DN + "DataXceiver.java:403"},
    "replicate": {_NN + "BlockManager.java:667"},
    "transfer_thread": {_DN + "DataNode.java:1034"},
    "transmitted": {_DN + "DataNode.java:1237"},
    "received_src": {_DN + "DataXceiver.java:392"},
    "deleting": {_DN + "FSDataset.java:1354"},
    "redundant": {_NN + "BlockManager.java:917"},
    "responder_exception": {_DN + f"BlockReceiver.java:{n}" for n in (825, 895, 985, 991)},
    "receiveBlock_exception": {_DN + "BlockReceiver.java:556"},
    "interrupted": {_DN + "BlockReceiver.java:767"},
    "offset": {_DN + "BlockReceiver.java:626"},
    "empty_packet": {_DN + "BlockReceiver.java:418"},
    "served": {_DN + "DataXceiver.java:175"},
    "serving_exception": {_DN + "DataXceiver.java:214"},
    "ask_delete": {_NN + "BlockManager.java:1340"},
    "invalidSet": {_NN + "BlockManager.java:328"},
}
EXPECTED = {
    "hdfs_100k": {"1": "allocateBlock", "2": "receiving", "3": "received_from", "4": "blockMap",
                  "5": "terminating", "6": "verification", "7": "writeBlock_exception",
                  "8": "replicate", "9": "transfer_thread", "10": "transmitted",
                  "11": "received_src", "12": "deleting", "13": "redundant",
                  "14": "responder_exception", "15": "receiveBlock_exception",
                  "16": "interrupted", "17": "offset", "18": "empty_packet", "19": "served"},
    "HDFS_2k": {"E1": "served", "E2": "transfer_thread", "E3": "serving_exception",
                "E4": "ask_delete", "E5": "replicate", "E6": "blockMap", "E7": "allocateBlock",
                "E8": "invalidSet", "E9": "deleting", "E10": "terminating",
                "E11": "received_from", "E12": "received_src", "E13": "receiving",
                "E14": "verification"},
}


def _where(statement: dict | None) -> str | None:
    return None if statement is None else f"{statement['file']}:{statement['line']}"


def time_index(work: Path) -> tuple[Path, dict]:
    """Index cold, unchanged and with one file touched; seconds and sizes of each."""
    out = work / "hdfs_source.jsonl"
    started = time.perf_counter()
    cold = build_index([SOURCE], out, ExtractOptions())
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    build_index([SOURCE], out, ExtractOptions())
    warm_s = time.perf_counter() - started
    copy = work / "src"
    shutil.copytree(SOURCE, copy)
    build_index([copy], work / "copy.jsonl", ExtractOptions())
    touched = copy / "java/org/apache/hadoop/hdfs/server/datanode/DataNode.java"
    touched.write_text(touched.read_text() + "\n// touched\n")
    os.utime(touched, ns=(1, 10**18))
    started = time.perf_counter()
    one = build_index([copy], work / "copy.jsonl", ExtractOptions())
    one_s = time.perf_counter() - started
    return out, {"files": cold.files, "statements": cold.statements, "bytes": cold.bytes_parsed,
                 "cold_s": cold_s, "warm_s": warm_s, "one_changed_s": one_s,
                 "one_changed_parsed": one.parsed, "index_bytes": out.stat().st_size}


def link_templates(linker: SourceLinker) -> tuple[list[dict], float]:
    rows, started, count = [], time.perf_counter(), 0
    for name, path in TEMPLATE_SETS.items():
        for event_id, template in read_templates(path).items():
            link = linker.matcher.link_template(template)      # uncached: the real cost
            count += 1
            expected = STATEMENTS[EXPECTED[name][event_id]]
            rows.append({"set": name, "event_id": event_id, "template": template,
                         "link": link, "correct": _where(link.statement) in expected,
                         "expected": expected})
    return rows, (time.perf_counter() - started) / count


def link_raw_lines(linker: SourceLinker) -> dict:
    truth = {event_id: STATEMENTS[key] for event_id, key in EXPECTED["HDFS_2k"].items()}
    with (RAW / "HDFS_2k.log_structured.csv").open(newline="") as handle:
        events = [row["EventId"] for row in csv.DictReader(handle)]
    lines = (RAW / "HDFS_2k.log").read_text().splitlines()
    started = time.perf_counter()
    uncached = [linker.matcher.link_line(*linker.lines.read(line)) for line in lines]
    uncached_s = time.perf_counter() - started
    started = time.perf_counter()
    cached = [linker.link_line(line) for line in lines]
    cached_s = time.perf_counter() - started
    correct = sum(_where(link.statement) in truth[event] for link, event in zip(cached, events))
    assert [_where(a.statement) for a in cached] == [_where(b.statement) for b in uncached]
    return {"lines": len(lines), "correct": correct, "uncached_s": uncached_s,
            "cached_s": cached_s}


def false_links(linker: SourceLinker) -> tuple[int, int, float]:
    scores = [linker.matcher.link_template(template)
              for template in read_templates(NEGATIVE).values()]
    return (sum(link.statement is not None for link in scores), len(scores),
            max(link.score for link in scores))


# Where a line says it was logged: log4j's [thread:Class@line], or a Python logger named
# after its module (oslo.log's "INFO nova.compute.manager [req-...]").
_LOGGING_CLASS = re.compile(r"(\w+)(?:\$\w+)?@\d+\] - |"
                            r" (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]*\.(\w+) \[")


def unseen_check(source: Path, log: Path, work: Path) -> dict:
    """Lines of ``log`` linked into ``source``, and how many to the class the line names."""
    started = time.perf_counter()
    summary = build_index([source], work / "unseen.jsonl", ExtractOptions(),
                          exclude=("*/tests/*", "*/test/*"))
    index_s = time.perf_counter() - started
    linker = SourceLinker(SourceIndex.load(work / "unseen.jsonl"))
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    linked = agree = named = 0
    for line in lines:
        found = _LOGGING_CLASS.search(line)
        statement = linker.link_line(line).statement
        named += found is not None
        if statement is None or found is None:
            continue
        linked += 1
        named_file = found.group(1) or found.group(2)
        printed_in = [statement["file"]] + ([statement["logged_at"]["file"]]
                                            if "logged_at" in statement else [])
        agree += any(Path(file).stem == named_file for file in printed_in)
    return {"files": summary.files, "statements": summary.statements,
            "mb": summary.bytes_parsed / 1e6, "index_s": index_s, "lines": len(lines),
            "named": named, "linked": linked, "agree": agree}


def _short(where: str) -> str:
    return where.rsplit("/", 1)[-1]


def print_table(rows: list[dict]) -> None:
    print("| set | event | template | linked statement | function | score | runner-up | checked |")
    print("| --- | --- | --- | --- | --- | ---: | --- | --- |")
    for row in rows:
        link = row["link"]
        statement = link.statement
        where = _short(_where(statement)) if statement else "no match"
        if statement and "logged_at" in statement:
            where += f" (logged at {_short(statement['logged_at']['file'])}:" \
                     f"{statement['logged_at']['line']})"
        also = [_short(_where(s)) for s in link.same_text]
        if also:
            where += " = " + ", ".join(also)
        runner = (f"{_short(_where(link.runner_up))} {link.runner_up_score:.2f}"
                  if link.runner_up else "")
        checked = "yes" if row["correct"] else "NO, expected " + ", ".join(
            sorted(_short(e) for e in row["expected"]))
        template = row["template"].replace("|", "\\|").replace("*", "\\*")
        print(f"| {row['set']} | {row['event_id']} | `{template}` | {where} | "
              f"{statement['function'] if statement else ''} | {link.score:.3f} | {runner} | "
              f"{checked} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unseen", nargs=2, type=Path, metavar=("SRC", "LOG"),
                        help="also link LOG's lines (naming their class or module logger) "
                             "into the source tree SRC")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        unseen = unseen_check(*args.unseen, Path(tmp)) if args.unseen else None
        index_path, indexing = time_index(Path(tmp))
        started = time.perf_counter()
        linker = SourceLinker(SourceIndex.load(index_path))
        load_s = time.perf_counter() - started
        rows, per_template_s = link_templates(linker)
        raw = link_raw_lines(linker)
        false, negatives, worst = false_links(linker)
    print_table(rows)
    print()
    for name in TEMPLATE_SETS:
        mine = [row for row in rows if row["set"] == name]
        print(f"{name}: {sum(r['correct'] for r in mine)}/{len(mine)} templates linked to "
              f"the statement that prints them")
    print(f"HDFS_2k.log raw lines: {raw['correct']}/{raw['lines']} linked correctly; "
          f"{raw['lines'] / raw['uncached_s']:,.0f} lines/s without the cache, "
          f"{raw['lines'] / raw['cached_s']:,.0f} lines/s with it")
    print(f"BGL_2k templates (no HDFS statement prints them): {false}/{negatives} linked "
          f"(highest score {worst:.3f})")
    print(f"index: {indexing['files']} files, {indexing['bytes'] / 1e6:.2f} MB, "
          f"{indexing['statements']} statements in {indexing['cold_s']:.2f} s "
          f"({indexing['bytes'] / 1e6 / indexing['cold_s']:.2f} MB/s); unchanged "
          f"{indexing['warm_s']:.2f} s; one file changed {indexing['one_changed_s']:.2f} s "
          f"({indexing['one_changed_parsed']} parsed); index file "
          f"{indexing['index_bytes'] / 1e6:.2f} MB, loaded in {load_s:.2f} s")
    print(f"matching: {per_template_s * 1e3:.1f} ms per template")
    if unseen:
        print(f"unseen: {unseen['files']} files, {unseen['mb']:.1f} MB, {unseen['statements']} "
              f"statements indexed in {unseen['index_s']:.1f} s; of {unseen['named']} lines "
              f"naming their class, {unseen['linked']} linked, {unseen['agree']} of them to "
              f"that class's file")


if __name__ == "__main__":
    main()
