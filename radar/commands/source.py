"""``radar source``: index the services' logging statements, link templates and lines to them."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import click

from radar.console import console, err_console, step_progress


@click.group("source")
def source_group() -> None:
    """From a log message to the line of code that logged it (needs radar-logs[source])."""


@source_group.command("index")
@click.argument("src_dirs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Index file (JSON Lines); an existing one is updated incrementally.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config whose source.loggers / source.wrappers name more logging calls.")
@click.option("--logger", "loggers", multiple=True, metavar="NAME",
              help="Another receiver name that logs (repeatable), e.g. audit.")
@click.option("--wrapper", "wrappers", multiple=True, metavar="NAME[:LEVEL]",
              help="A function or method that logs its first text argument (repeatable).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Skip files whose path below SRC_DIR matches (repeatable), e.g. '*/test/*'.")
@click.option("--max-file-bytes", default=10 * 1024 * 1024, show_default=True,
              type=click.IntRange(min=1),
              help="Files larger than this are skipped and listed, not parsed (generated "
                   "code; parsing takes about 60 bytes of memory per byte).")
def index_command(src_dirs: tuple[Path, ...], out: Path, config_path: Path | None,
                  loggers: tuple[str, ...], wrappers: tuple[str, ...],
                  exclude: tuple[str, ...], max_file_bytes: int) -> None:
    """Parse SRC_DIRS (Java, Python, Go, JavaScript, TypeScript, Scala, C) and record every
    logging statement: its message template, level, file, line, class, function and text.

    Re-running with the same --out parses only the files that changed.
    """
    from radar.source.extract import ExtractOptions
    from radar.source.index import build_index, source_files

    if config_path is not None:
        from radar.config import load_config

        section = load_config(config_path).source
        loggers, wrappers = (*section.loggers, *loggers), (*section.wrappers, *wrappers)
    options = ExtractOptions(loggers=tuple(loggers), wrappers=tuple(wrappers))
    total = sum(1 for _ in source_files([d.resolve() for d in src_dirs if d.is_dir()], exclude))
    with step_progress(total, "indexing (files)") as update:
        summary = build_index(list(src_dirs), out, options, exclude=exclude,
                              progress=lambda done, _total: update(done),
                              max_file_bytes=max_file_bytes)
    _print_index_summary(summary)


def _print_index_summary(summary) -> None:
    from radar.commands.data import make_table

    table = make_table(f"source index {summary.path}", "", "value")
    languages = ", ".join(f"{name} {count:,}" for name, count in
                          sorted(summary.by_language.items()) if count) or "none"
    rate = summary.bytes_parsed / max(summary.seconds, 1e-9) / 1e6
    skipped = f", {len(summary.skipped):,} skipped" if summary.skipped else ""
    for name, value in (("files", (f"{summary.files:,} ({summary.parsed:,} parsed, "
                                   f"{summary.reused:,} unchanged{skipped})")),
                        ("logging statements", f"{summary.statements:,} ({languages})"),
                        ("messages built in one place, logged in another",
                         f"{summary.indirect:,}"),
                        ("time", f"{summary.seconds:.2f} s ({rate:.2f} MB/s parsed)")):
        table.add_row(name, value)
    if summary.skipped:
        table.add_row("skipped (over --max-file-bytes)",
                      f"{len(summary.skipped):,}; first: {'; '.join(summary.skipped[:3])}")
    if summary.failed:
        table.add_row("files whose statements could not be read",
                      f"{len(summary.failed):,}; first: {'; '.join(summary.failed[:3])}")
    console.print(table)
    if summary.skipped:
        err_console.print(f"warning: {len(summary.skipped):,} file(s) over --max-file-bytes "
                          f"not indexed (first: {summary.skipped[0]}); raise --max-file-bytes "
                          "to parse them, or --exclude them to silence this")


@source_group.command("match")
@click.option("--index", "index_path", required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="A `radar source index` file.")
@click.option("--templates", "templates_path", type=click.Path(dir_okay=False, path_type=Path),
              help="event_id<TAB>template per line (radar ingest's templates.tsv) or "
                   "LogHub's *_templates.csv.")
@click.option("--lines", "lines_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Raw log lines (plain or .gz).")
@click.option("--format", "line_format", metavar="REGEX",
              help="Line regex with a 'content' group (and maybe 'level') for --lines "
                   "[default: the radar ingest presets, else the whole line].")
@click.option("--min-score", default=None, type=click.FloatRange(0, 1),
              help="Below it a link is 'no match' [default: 0.6].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per template or line.")
def match_command(index_path: Path, templates_path: Path | None, lines_path: Path | None,
                  line_format: str | None, min_score: float | None, as_json: bool) -> None:
    """Link log templates (--templates) or raw log lines (--lines) to the logging
    statements that print them, with a score and the runner-up; 'no match' when no
    statement fits."""
    from radar.errors import RadarError
    from radar.source.link import SourceIndex, SourceLinker
    from radar.source.match import MIN_SCORE

    if (templates_path is None) == (lines_path is None):
        raise RadarError("pass exactly one of --templates FILE or --lines FILE")
    index = SourceIndex.load(index_path)
    linker = SourceLinker(index, min_score=MIN_SCORE if min_score is None else min_score,
                          line_format=line_format)
    started = time.perf_counter()
    if templates_path is not None:
        rows = _template_rows(linker, templates_path)
    else:
        rows = _line_rows(linker, lines_path, line_format is not None)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    rows = list(rows)
    _print_links(rows, templates_path is not None, time.perf_counter() - started)


def _link_fields(link) -> dict:
    statement = link.statement or {}
    runner = link.runner_up
    return {"file": statement.get("file"), "line": statement.get("line"),
            "function": statement.get("function"), "class": statement.get("class"),
            "level": statement.get("level"), "score": round(link.score, 4),
            "statement": statement.get("statement"),
            "logged_at": statement.get("logged_at"),
            "also_at": [{"file": s["file"], "line": s["line"]} for s in link.same_text],
            "runner_up": None if runner is None else {
                "file": runner["file"], "line": runner["line"],
                "score": round(link.runner_up_score, 4)}}


def _template_rows(linker, path: Path):
    from radar.source.link import read_templates

    for event_id, template in read_templates(path).items():
        yield {"event_id": event_id, "template": template,
               **_link_fields(linker.link_template(template))}


def _line_rows(linker, path: Path, user_format: bool):
    from radar.deadline import LineDeadline
    from radar.ingest.inputs import check_inputs, iter_lines

    check_inputs([path])
    deadline = LineDeadline(options="--format")
    with deadline if user_format else contextlib.nullcontext():
        for number, text in iter_lines(path):
            deadline.path, deadline.number = str(path), number
            fields = _link_fields(linker.link_line(text))
            deadline.path = ""
            yield {"input_line": number, "text": text, **fields}


def _print_links(rows: list[dict], by_template: bool, seconds: float) -> None:
    from rich.table import Table

    if not by_template:
        rows = _group_lines(rows)
    table = Table(title=f"{len(rows)} {'templates' if by_template else 'statements'}, "
                        f"{seconds:.2f} s", title_justify="left", show_lines=False)
    for column in ("event" if by_template else "lines", "template" if by_template else
                   "example line", "statement", "function", "level", "score", "runner-up"):
        table.add_column(column, overflow="fold")
    for row in rows:
        # The table names files by their last part; --json gives the path.
        where = f"{row['file'].rsplit('/', 1)[-1]}:{row['line']}" if row["file"] else "no match"
        runner = row["runner_up"]
        text = row.get("template", row.get("text"))
        table.add_row(str(row.get("event_id", row.get("count"))),
                      text if len(text) <= 120 else text[:117] + "...", where,
                      row["function"] or "",
                      row["level"] or "", f"{row['score']:.3f}",
                      f"{runner['file'].rsplit('/', 1)[-1]}:{runner['line']} "
                      f"{runner['score']:.3f}" if runner else "")
    console.print(table)


def _group_lines(rows: list[dict]) -> list[dict]:
    """Lines grouped by the statement they link to, most frequent first."""
    groups: dict = {}
    for row in rows:
        key = (row["file"], row["line"])
        if key not in groups:
            groups[key] = dict(row, count=0)
        groups[key]["count"] += 1
    return sorted(groups.values(), key=lambda row: -row["count"])
