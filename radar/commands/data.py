"""Data commands: ``radar synth``, ``radar validate``, ``radar split``, ``radar prepare``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from radar.console import console, data_text, err_console
from radar.data.files import DEFAULT_PATTERN

_PATTERN = click.option("--pattern", default=DEFAULT_PATTERN, show_default=True,
                        help="File name pattern inside PATH (*.jsonl twins are found too).")
_MAX_LEN = click.option("--max-seq-length", default=512, show_default=True,
                        type=click.IntRange(min=3), help="Model input length (CLS + events + SEP).")
_STRICT = click.option("--strict", is_flag=True,
                       help="Treat the first bad record as fatal instead of skipping it.")
_VOCAB = click.option("--vocab-size", type=click.IntRange(min=1), default=None,
                      help="Treat records with token ids at or above this size as bad.")
_WORKERS = click.option("--workers", default=None, type=click.IntRange(min=1),
                        help="Files read at once, in separate processes (default: up to 4).")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def make_table(title: str, *columns: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        if i == 0:      # names wrap rather than lose their date to an ellipsis
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True)
    return table


@click.command("synth")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--days", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--sessions", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Sessions per day file.")
@click.option("--anomaly-rate", default=0.05, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--start-date", default="2025-02-24", show_default=True, help="First day.")
@_MAX_LEN
@click.option("--no-pad", is_flag=True,
              help="Pad token_ids to each file's longest session, not to --max-seq-length.")
@click.option("--drift", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Day-to-day drift: each day after the first moves the traffic mix and "
                   "path frequencies by a log-normal step of this sigma (e.g. 0.3).")
@click.option("--release", default=0.0, show_default=True, type=click.FloatRange(0, 0.5),
              help="A release on the last day: from midday a new benign log line, never "
                   "logged before, appears in this share of the day's sessions (e.g. 0.2).")
@click.option("--force", is_flag=True,
              help="Write into OUT although it holds day files, labels.csv or templates.tsv.")
def synth_command(out: Path, days: int, sessions: int, anomaly_rate: float, seed: int,
                  start_date: str, max_seq_length: int, no_pad: bool, drift: float,
                  release: float, force: bool) -> None:
    """Write synthetic microservice day files to OUT, with labels.csv and templates.tsv.

    The files use the user's format (preprocessed_logs_YYYY-MM-DD.json); labels.csv holds
    the ground truth (file, session_id, label, anomaly_kind). Same seed, same bytes.
    """
    from radar.data.files import refuse_foreign_dataset
    from radar.data.synth import generate

    if not force:
        refuse_foreign_dataset(out, "synth would replace its day files and labels.csv")
    summary = generate(out, days=days, sessions=sessions, anomaly_rate=anomaly_rate,
                       seed=seed, start_date=start_date, max_len=max_seq_length,
                       padded=not no_pad, drift=drift, release=release)
    console.print(f"wrote {len(summary.files)} day files, {summary.n_sessions:,} sessions "
                  f"({summary.n_anomalies:,} anomalous) to {out}")
    table = make_table("sessions", "kind", "sessions")
    for kind, count in sorted(summary.kinds.items(), key=lambda kv: -kv[1]):
        table.add_row(kind, f"{count:,}")
    services = make_table("services", "service", "sessions")
    for service, count in summary.services.most_common():
        services.add_row(service, f"{count:,}")
    console.print(table, services)
    console.print(f"has_error: {summary.n_has_error:,}  has_warn: {summary.n_has_warn:,}  "
                  f"longest: {summary.max_events} events  "
                  f"cut to {max_seq_length}: {summary.n_over_max_len}")
    console.print(f"labels: {summary.labels_path}\ntemplates: {summary.templates_path}")


@click.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
@_PATTERN
@_MAX_LEN
@_VOCAB
@_STRICT
@_WORKERS
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def validate_command(path: Path, pattern: str, max_seq_length: int, vocab_size: int | None,
                     strict: bool, workers: int | None, as_json: bool) -> None:
    """Check the day files under PATH (or one file) in one streaming pass.

    Reports file sizes and dates, sessions per file, sequence lengths, services,
    error/warn shares, the event vocabulary, the token_ids layout and bad records.
    Exits 1 when a file is unreadable or corrupt; bad records alone are not fatal
    unless --strict.
    """
    from radar.data.cache_build import default_workers
    from radar.data.files import find_day_files
    from radar.data.stats import collect_stats
    from radar.errors import DataError

    files = find_day_files(path, pattern)
    with _file_progress(len(files), "validating", quiet=as_json) as advance:
        stats = collect_stats(files, max_seq_length=max_seq_length, vocab_size=vocab_size,
                              strict=strict, workers=workers or default_workers(),
                              progress_callback=advance)
    if as_json:
        click.echo(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_stats(stats)
    broken = stats.unreadable
    if broken:
        more = f" (and {len(broken) - 1} more file(s))" if len(broken) > 1 else ""
        raise DataError(f"{broken[0].error}{more}")


class _file_progress:
    """A rich progress bar over files on stderr; yields ``advance(path, n_done)``."""

    def __init__(self, total: int, label: str, quiet: bool = False):
        self.total, self.label, self.quiet = total, label, quiet

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        if self.quiet or self.total < 2:
            self.progress = None
            return lambda *args, **kwargs: None
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), console=err_console, transient=True)
        self.progress.start()
        task = self.progress.add_task(self.label, total=self.total)
        return lambda *args, **kwargs: self.progress.advance(task)

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


def _print_stats(stats) -> None:
    data = stats.to_dict()
    lengths = data["sequence_length"]
    vocab = data["vocabulary"]
    overview = make_table("dataset", "", "value")
    rows = [
        ("files", f"{data['n_files']:,}"),
        ("days", (f"{data['first_day']} .. {data['last_day']} "
                 f"({data['missing_days']} missing in between)")),
        ("size", (f"{_mb(data['bytes']['total'])} (min {_mb(data['bytes']['min'])}, "
                 f"max {_mb(data['bytes']['max'])})")),
        ("sessions", f"{data['n_sessions']:,}"),
        ("sequence length", (f"mean {lengths['mean']}, min {lengths['min']}, "
                            f"p50 {lengths['p50']}, p90 {lengths['p90']}, "
                            f"p99 {lengths['p99']}, max {lengths['max']}")),
        (f"longer than {stats.max_seq_length - 2} events", f"{data['n_over_max_length']:,}"),
        ("has_error / has_warn", f"{data['error_share']:.2%} / {data['warn_share']:.2%}"),
        ("distinct events", f"{vocab['distinct_events']:,} (max id {vocab['max_event_id']})"),
        ("token_ids layout ok", (f"{data['token_layout']['ok']:,} "
                                f"({data['token_layout']['mismatch']:,} mismatched)")),
        ("bad records", f"{data['bad_records']['total']:,}"),
    ]
    if stats.vocab_size:
        rows.append((f"event ids >= {stats.vocab_size}", f"{vocab['n_events_out_of_vocab']:,}"))
    for row in rows:
        overview.add_row(*row)
    console.print(overview)
    services = make_table("services", "service", "sessions", "share", "error", "warn", "mean len")
    n = max(data["n_sessions"], 1)
    for name, s in sorted(data["services"].items(), key=lambda kv: -kv[1]["sessions"]):
        services.add_row(data_text(name), f"{s['sessions']:,}", f"{s['sessions'] / n:.1%}",
                         f"{s['error_share']:.2%}", f"{s['warn_share']:.2%}",
                         f"{s['mean_length']}")
    console.print(services)
    _print_files(stats)
    _print_problems(data)


def _print_files(stats, limit: int = 40) -> None:
    files = stats.files
    shown = files if len(files) <= limit else [f for f in files if f.error or f.n_bad]
    if not shown:
        console.print(f"all {len(files)} files read cleanly")
        return
    title = "files" if shown is files else f"files with problems (of {len(files)})"
    table = make_table(title, "file", "size", "sessions", "bad", "status")
    for f in shown:
        status = "[red]unreadable[/red]" if f.error else "ok"
        table.add_row(data_text(Path(f.path).name), _mb(f.size_bytes), f"{f.n_sessions:,}",
                      f"{f.n_bad:,}", status)
    console.print(table)


def _print_problems(data: dict) -> None:
    bad = data["bad_records"]
    if bad["total"]:
        table = make_table("bad records (skipped)", "kind", "count")
        for kind, count in sorted(bad["by_kind"].items(), key=lambda kv: -kv[1]):
            table.add_row(kind, f"{count:,}")
        console.print(table)
        for ex in bad["examples"]:
            console.print(f"  {ex['file']}, record {ex['index']}, byte {ex['offset']}: "
                          f"{ex['kind']}: {ex['detail']}", markup=False, highlight=False)
    for ex in data["token_layout"]["examples"]:
        console.print(f"  token_ids differ from [101] + events + [102]: {ex['file']}, "
                      f"record {ex['index']}, byte {ex['offset']}", markup=False, highlight=False)
    for repeat in data["duplicate_session_ids"]["files"]:
        console.print(f"[yellow]warning:[/yellow] {data_text(repeat['file'])}: "
                      f"{repeat['n_repeated']:,} "
                      f"sessions repeat a session_id of the same day (e.g. {repeat['example']}); "
                      "labels keyed by (file, session_id) cannot tell them apart",
                      highlight=False)
    if len(data["unreadable_files"]) > 1:     # the first one ends the run as the error
        for broken in data["unreadable_files"]:
            console.print(f"[red]unreadable:[/red] {data_text(broken['error'])}",
                          highlight=False)


@click.command("split")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for train_files.txt and val_files.txt.")
@click.option("--val-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True))
@click.option("--random", "shuffle", is_flag=True,
              help="Shuffle the days (seeded) instead of validating on the latest days.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--limit-files", default=0, show_default=True, type=click.IntRange(min=0),
              help="Use only the N most recent days (0: all).")
@_PATTERN
def split_command(path: Path, out_dir: Path, val_fraction: float, shuffle: bool, seed: int,
                  limit_files: int, pattern: str) -> None:
    """Split the day files under PATH into train_files.txt and val_files.txt.

    By default the latest days validate (train on the past, check on new days);
    --random is a seeded shuffle.
    """
    from radar.data.files import find_day_files
    from radar.data.split import split_files, write_split

    files = find_day_files(path, pattern)
    train, val = split_files(files, val_fraction=val_fraction,
                             method="random" if shuffle else "date", seed=seed,
                             limit_files=limit_files)
    train_path, val_path = write_split(train, val, out_dir)
    console.print(f"{len(files)} day files found; "
                  f"{len(train)} train, {len(val)} validation "
                  f"({'random, seed ' + str(seed) if shuffle else 'latest days validate'})")
    for name, chosen, written in (("train", train, train_path), ("validation", val, val_path)):
        names = [data_text(p.name) for p in chosen]
        listing = ", ".join(names) if len(names) <= 6 else \
            f"{', '.join(names[:3])}, ... {', '.join(names[-2:])}"
        console.print(f"{name}: {listing}", highlight=False)
        console.print(f"  -> {data_text(written)}", highlight=False)


@click.command("prepare")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--cache-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the prepared (binary) day caches go.")
@_WORKERS
@_PATTERN
@_MAX_LEN
@_VOCAB
@_STRICT
def prepare_command(path: Path, cache_dir: Path, workers: int | None, pattern: str,
                    max_seq_length: int, vocab_size: int | None, strict: bool) -> None:
    """Convert the day files under PATH into a fast binary cache (once per file).

    Files already prepared and unchanged are skipped. Training and detection read the
    cache, not the JSON.
    """
    from radar.data.cache_build import default_workers, prepare_files
    from radar.data.files import find_day_files

    files = find_day_files(path, pattern)
    workers = workers or default_workers()
    with _file_progress(len(files), "preparing") as advance:
        results = prepare_files(files, cache_dir, workers=workers,
                                max_seq_length=max_seq_length, strict=strict,
                                vocab_size=vocab_size, progress_callback=advance)
    _print_prepared(results, cache_dir)


def _print_prepared(results, cache_dir: Path, limit: int = 40) -> None:
    from radar.errors import DataError

    shown = results if len(results) <= limit else [
        r for r in results if r.truncated is not None or r.report.n_bad]
    title = f"prepared into {data_text(cache_dir)}" + ("" if shown is results else
                                            f" (files with problems, of {len(results)})")
    table = make_table(title, "file", "size", "sessions", "bad", "status")
    for result in shown:
        status = "up to date" if result.skipped else "prepared"
        if result.truncated is not None:
            status = "[red]truncated[/red]"
        table.add_row(data_text(Path(result.path).name), _mb(result.source_bytes),
                      f"{result.n_sessions:,}", f"{result.report.n_bad:,}", status)
    console.print(table)
    n_new = sum(not r.skipped for r in results)
    seconds = sum(r.seconds for r in results if not r.skipped)
    console.print(f"{n_new} prepared, {len(results) - n_new} already up to date, "
                  f"{sum(r.n_sessions for r in results):,} sessions "
                  f"({seconds:.1f} s of conversion)")
    for result in results:
        if result.n_duplicate_ids:
            console.print(f"warning: {result.path}: {result.n_duplicate_ids:,} sessions repeat "
                          "a session_id of the same day; labels keyed by (file, session_id) "
                          "cannot tell them apart (`radar validate` shows one)",
                          markup=False, highlight=False)
    broken = [r for r in results if r.truncated is not None]
    if broken:
        more = f" (and {len(broken) - 1} more damaged file(s))" if len(broken) > 1 else ""
        raise DataError(f"{broken[0].truncated}{more}")
