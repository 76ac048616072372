"""`radar evaluate`, `radar analyze` and `radar report`: is a run any good, and why."""

from __future__ import annotations

import json

import click

from radar.console import console


def _print_json(data: dict) -> None:
    click.echo(json.dumps(data, indent=2))


@click.command("evaluate")
@click.option("--results", "results_path", required=True, type=click.Path(dir_okay=False),
              help="anomaly_results.json written by `radar detect` or `radar run`.")
@click.option("--labels", type=click.Path(dir_okay=False),
              help="Label CSV (file,session_id,label or BlockId,Label). Without it has_error "
                   "is used as a weak label, and every output says so.")
@click.option("--threshold", type=float,
              help="Evaluate at this threshold instead of the one the file was written with.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def evaluate_command(results_path, labels, threshold, as_json):
    """Precision, recall, F1, ROC-AUC and PR-AUC of a results file, per service and overall."""
    from radar.report.evaluate import evaluate, evaluation_table, figures_note

    report = evaluate(results_path, labels, threshold=threshold)    # bounded memory
    if as_json:
        _print_json(report)
        return
    console.print(evaluation_table(report))
    console.print(figures_note(report))
    if report["weak_labels"]:
        console.print("[yellow]No --labels given: has_error served as a weak label.[/yellow]")


@click.command("analyze")
@click.argument("results_path", type=click.Path(dir_okay=False))
@click.option("--data", "data_dir", type=click.Path(file_okay=False),
              help="Folder of the day files, to show the original log lines of the top "
                   "anomalies (default: the run's data.preprocessed_dir when the results sit "
                   "in a run folder).")
@click.option("--top", "top_n", default=10, show_default=True, type=click.IntRange(0, 1000),
              help="How many top anomalous sessions to show.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def analyze_command(results_path, data_dir, top_n, as_json):
    """Score statistics, anomalies per service and day, and the top anomalous sessions."""
    from pathlib import Path

    from radar.report.analyze import analysis_renderable, analyze
    from radar.report.digest import digest_results
    from radar.rundir import RunDir

    cache_dir = None
    folder = Path(results_path).resolve().parent
    for run in (RunDir(folder, []), RunDir(folder.parent, [])):   # a run, or a detector's
        config = run.config()
        if config is not None:
            data = config.get("data") or {}
            data_dir = data_dir or data.get("preprocessed_dir")
            cache_dir = data.get("cache_dir")
            break
    digest = digest_results(results_path, keep_top=4 * top_n)   # bounded memory
    analysis = analyze(digest, data_dir=data_dir, cache_dir=cache_dir, top_n=top_n)
    if as_json:
        _print_json(analysis)
    else:
        console.print(analysis_renderable(analysis))


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--labels", type=click.Path(dir_okay=False),
              help="Label CSV (default: the run's data.label_file; else has_error, weak).")
def report_command(run_dir, labels):
    """Write report.html (self-contained), report.json and report.md into RUN_DIR."""
    from radar.report.build import write_report

    paths = write_report(run_dir, labels_path=labels)
    for kind, path in paths.items():
        console.print(f"{kind:>8}: {path}")
