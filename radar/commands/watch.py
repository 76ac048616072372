"""``radar watch``: score sessions of a live log stream with a trained run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from radar.console import err_console
from radar.errors import RadarError

INGEST_OPTIONS = ("preset", "line_format", "group_by", "key_regex", "key_group", "window",
                  "step", "service", "session_timeout", "max_open_sessions")


@click.command("watch")
@click.argument("stdin", required=False, metavar="[-]")
@click.option("--run", "run_dir", required=True, type=click.Path(path_type=Path),
              help="Trained run folder (ensemble.json or best_model.pt).")
@click.option("--follow", "files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Follow FILE like tail -F (repeatable); '-' reads stdin.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Checkpoint folder (offsets, open sessions, templates) "
                   "[default: RUN/watch-state].")
@click.option("--templates-state", type=click.Path(dir_okay=False, path_type=Path),
              help="The training data's drain_state.json [default: from the run's "
                   "config.yaml data.preprocessed_dir].")
@click.option("--alerts", type=click.Path(dir_okay=False, path_type=Path),
              help="Append records here as JSON lines [default: stdout].")
@click.option("--all", "all_sessions", is_flag=True, help="Write every scored session.")
@click.option("--webhook", metavar="URL", help="POST each record here (JSON).")
@click.option("--webhook-retries", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--webhook-timeout", "webhook_timeout_s", default=5.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True), metavar="SECONDS")
@click.option("--preset", default="generic", show_default=True,
              type=click.Choice(["hdfs", "bgl", "generic"]), help="As radar ingest.")
@click.option("--format", "line_format", metavar="REGEX", help="As radar ingest.")
@click.option("--group-by", type=click.Choice(["key", "window", "sliding"]))
@click.option("--key-regex", metavar="REGEX")
@click.option("--key-group", metavar="NAME")
@click.option("--window", type=click.IntRange(min=1), metavar="SECONDS")
@click.option("--step", type=click.IntRange(min=1), metavar="SECONDS")
@click.option("--service", help="service_name of every session (as radar ingest).")
@click.option("--session-timeout", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Close a key session idle this long in log time.")
@click.option("--wall-timeout", "wall_timeout_s", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Close a session whose last line came this long ago "
                                      "(wall clock; for quiet streams).")
@click.option("--end-regex", metavar="REGEX",
              help="A line matching this ends its key session(s).")
@click.option("--max-open-sessions", default=100_000, show_default=True,
              type=click.IntRange(min=1), help="Oldest closes early beyond this.")
@click.option("--max-session-events", default=10_000, show_default=True,
              type=click.IntRange(min=1), help="A session closes early at this many events.")
@click.option("--once", is_flag=True, help="Read the files to their end, close every "
                                           "session, score and exit.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Closed sessions per model call at most.")
@click.option("--batch-wait", "batch_wait_s", default=0.2, show_default=True,
              type=click.FloatRange(min=0), metavar="SECONDS",
              help="Longest a closed session waits for its micro-batch.")
@click.option("--checkpoint-interval", "checkpoint_interval_s", default=5.0,
              show_default=True, type=click.FloatRange(min=0), metavar="SECONDS")
@click.option("--stats-interval", "stats_interval_s", default=10.0, show_default=True,
              type=click.FloatRange(min=0), metavar="SECONDS", help="Stats line on stderr; 0 = off.")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus /metrics on 127.0.0.1:PORT (0 = any free port).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def watch_command(stdin, run_dir, files, state_dir, templates_state, alerts, all_sessions,
                  webhook, webhook_retries, webhook_timeout_s, wall_timeout_s, end_regex,
                  max_session_events, once, batch_size, batch_wait_s, checkpoint_interval_s,
                  stats_interval_s, metrics_port, device, **ingest_options):
    """Score sessions of live logs: `kubectl logs -f POD | radar watch --run RUN -`.

    Lines are read like radar ingest reads them (same --preset/--format and grouping
    options; event ids from the run's template state), sessions close on an end
    marker, an idle timeout (log time or wall clock), the caps, or the end of input,
    and are scored in micro-batches. Each anomalous session (every one with --all)
    becomes one JSON line: the record radar detect writes plus session_key,
    first_seen, closed_at, closed_by and latency_s. Restart-safe through --state.
    """
    from radar.ingest import IngestOptions
    from radar.watch import Watcher, WatchOptions

    use_stdin = stdin == "-" or any(str(path) == "-" for path in files)
    files = [path for path in files if str(path) != "-"]
    if stdin not in (None, "-"):
        raise RadarError(f"unexpected argument {stdin!r}: follow files with --follow FILE, "
                         "or pass '-' to read standard input")
    if bool(files) == use_stdin:
        raise RadarError("say where lines come from: --follow FILE (repeatable) or '-' for "
                         "standard input (not both)")
    if once and not files:
        raise RadarError("--once applies to --follow files; standard input ends by itself")
    options = WatchOptions(
        run_dir=run_dir, state_dir=state_dir or run_dir / "watch-state", files=files,
        ingest=IngestOptions(**{name: ingest_options[name] for name in INGEST_OPTIONS}),
        templates_state=templates_state, alerts=alerts, all_sessions=all_sessions,
        webhook=webhook, webhook_retries=webhook_retries, webhook_timeout_s=webhook_timeout_s,
        end_regex=end_regex, wall_timeout_s=wall_timeout_s,
        max_session_events=max_session_events, once=once, batch_size=batch_size,
        batch_wait_s=batch_wait_s, checkpoint_interval_s=checkpoint_interval_s,
        stats_interval_s=stats_interval_s, metrics_port=metrics_port, device=device)
    watcher = Watcher(options, log=_log)
    if watcher.metrics_server is not None:
        _log(f"metrics: http://127.0.0.1:{watcher.metrics_server.server_port}/metrics")
    summary = watcher.run()
    _log(f"watch: {summary['lines']:,} lines ({summary['bad_lines']:,} bad, "
         f"{summary['lines_without_key']:,} without a key), {summary['scored']:,} sessions "
         f"scored, {summary['alerts']:,} alerts, {summary['emitted']:,} records written, "
         f"{summary['open_sessions']:,} still open, {summary['new_templates']:,} new templates; "
         f"{summary['seconds']:.1f} s after start-up "
         f"({summary['lines'] / max(summary['seconds'], 1e-9):,.0f} lines/s)")
    for bad in summary["bad_examples"]:
        _log(f"  bad line {bad}")


def _log(message: str) -> None:
    err_console.print(message, markup=False, highlight=False)
    sys.stderr.flush()
