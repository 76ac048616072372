"""``radar ingest``: raw log files into day files (Drain3 templates, sessions, labels)."""

from __future__ import annotations

from pathlib import Path

import click

from radar.console import console, step_progress


@click.command("ingest")
@click.argument("logs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the day files, templates.tsv and the template state.")
@click.option("--preset", default="generic", show_default=True,
              type=click.Choice(["hdfs", "bgl", "generic"]),
              help="Line format and grouping of a known log type.")
@click.option("--format", "line_format", metavar="REGEX",
              help="Line regex with named groups: content, and timestamp or date[/time]; "
                   "optional level, label, service.")
@click.option("--group-by", type=click.Choice(["key", "window", "sliding"]),
              help="Sessions by key, fixed time windows or sliding windows "
                   "(default: the preset's).")
@click.option("--key-regex", metavar="REGEX",
              help="Session key searched in each message (every match joins its session).")
@click.option("--key-group", metavar="NAME", help="Session key from a named group of --format.")
@click.option("--window", type=click.IntRange(min=1), metavar="SECONDS",
              help="Window length (default: the preset's, 300).")
@click.option("--step", type=click.IntRange(min=1), metavar="SECONDS",
              help="Sliding window step (default: window / 5).")
@click.option("--service", help="service_name of every session (default: a 'service' group, "
                                "else the preset's name).")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Template state file, reused by later runs [default: OUT/drain_state.json].")
@click.option("--sim-th", type=click.FloatRange(0, 1), help="Drain similarity threshold.")
@click.option("--depth", type=click.IntRange(min=3), help="Drain parse-tree depth.")
@click.option("--max-session-lines", default=200, show_default=True,
              type=click.IntRange(min=0),
              help="original_logs kept per session (event_sequence is never cut).")
@click.option("--session-timeout", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Close a key session idle this long (log time).")
@click.option("--max-open-sessions", default=100_000, show_default=True,
              type=click.IntRange(min=1),
              help="Key sessions held at once; the least recently active closes beyond.")
@click.option("--append", is_flag=True,
              help="Add to day files already in OUT instead of replacing them.")
@click.option("--migrate-state", is_flag=True,
              help="Convert an old (jsonpickle) template state to plain JSON first, reading "
                   "only its ids and templates; LOGS may then be left out.")
@click.option("--force", is_flag=True,
              help="Write into an --out folder that holds another dataset's day files, "
                   "labels.csv or templates.tsv (without its template state).")
def ingest_command(logs: tuple[Path, ...], out_dir: Path, migrate_state: bool, force: bool,
                   **options) -> None:
    """Parse raw LOGS (plain or .gz, in order) into day files under --out.

    Messages become Drain3 templates (event ids stay the same across runs through the
    state file); lines become sessions by key (HDFS block ids) or time window (BGL);
    each session keeps its key as session_key. Lines that do not match the format are
    counted and the first few shown, never fatal.
    """
    from radar.ingest import STATE_NAME, IngestOptions, ingest

    if migrate_state:
        from radar.ingest.templates import migrate_state as migrate

        state = options["state"] or out_dir / STATE_NAME
        store = migrate(state)
        console.print(f"{state}: {store.n_templates:,} templates in the plain-JSON state "
                      f"format (the old file is kept as {state.name}.v1)", highlight=False)
        if not logs:
            return
    elif not logs:
        raise click.UsageError("Missing argument 'LOGS...'.")
    state = options["state"] or out_dir / STATE_NAME
    if not force and not state.exists():
        # Without the state that numbered them, files there are another id space.
        from radar.data.files import refuse_foreign_dataset

        refuse_foreign_dataset(out_dir, f"without their template state ({state}) this "
                                        "ingest would number events afresh beside them and "
                                        "replace templates.tsv")
    total = sum(path.stat().st_size for path in logs if path.is_file())
    with step_progress(total, "ingesting (bytes)") as update:
        summary = ingest(list(logs), out_dir, IngestOptions(**options),
                         progress=lambda done, _total: update(done))
    _print_summary(summary)


def _print_summary(summary) -> None:
    from radar.commands.data import make_table

    table = make_table(f"ingested into {summary.out_dir}", "", "value")
    rows = [
        ("format / grouping", f"{summary.format_name} / {summary.grouping}"),
        ("lines", (f"{summary.lines_read:,} read, {summary.lines_parsed:,} parsed, "
                  f"{summary.bad_lines:,} bad")),
        ("sessions", f"{summary.sessions:,} in {len(summary.day_files)} day files"),
        ("templates", f"{summary.templates:,} ({summary.new_templates:,} new)"),
        ("time", (f"{summary.seconds:.1f} s "
                 f"({summary.lines_read / max(summary.seconds, 1e-9):,.0f} lines/s)")),
    ]
    if summary.lines_without_key:
        rows.append(("lines without a session key (skipped)", f"{summary.lines_without_key:,}"))
    if summary.sessions_closed_early:
        rows.append(("sessions closed early (timeout / open cap)",
                     f"{summary.sessions_closed_early:,}"))
    if summary.duplicate_windows:
        rows.append(("sliding windows dropped as repeats", f"{summary.duplicate_windows:,}"))
    if summary.logs_truncated:
        rows.append(("sessions with original_logs cut", f"{summary.logs_truncated:,}"))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    days = list(summary.day_files.items())
    shown = days if len(days) <= 6 else days[:3] + [("...", None)] + days[-2:]
    for path, count in shown:
        console.print(f"  {path}" + ("" if count is None else
                                      f"  ({count:,} session{'s' if count != 1 else ''})"),
                      highlight=False)
    console.print(f"templates: {summary.templates_path}\nstate: {summary.state_path}",
                  highlight=False)
    if summary.labels_path is not None:
        console.print(f"labels: {summary.labels_path}", highlight=False)
    _print_problems(summary)


def _print_problems(summary) -> None:
    for bad in summary.bad_examples:
        console.print(f"  bad line {bad}", markup=False, highlight=False)
    if summary.bad_lines > len(summary.bad_examples):
        console.print(f"  ... {summary.bad_lines - len(summary.bad_examples):,} more bad lines "
                      "(skipped)", highlight=False)
    for damaged in summary.damaged_inputs:
        console.print(f"[yellow]warning:[/yellow] {damaged}; its earlier lines were kept",
                      highlight=False)
    for path in summary.replaced_files:
        console.print(f"[yellow]warning:[/yellow] replaced {path} from an earlier run "
                      "(--append adds to it instead)", highlight=False)
