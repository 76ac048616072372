"""``radar plot-curve``: a run's training curve as a PNG, from its metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import click

from radar.console import console
from radar.errors import RadarError

CURVE_FILE = "training_curve.png"


def curve_runs(run_dir: Path) -> list[Path]:
    """The run folders to plot: ``run_dir`` itself, or each detector folder inside it.

    One detector trains into ``output_dir``; several each into ``output_dir/NAME``.
    """
    from radar.metrics_log import METRICS_FILE

    if not run_dir.is_dir():
        raise RadarError(f"{run_dir} is not a directory; pass the output_dir of a "
                         f"`radar train` or `radar run`")
    if (run_dir / METRICS_FILE).is_file():
        return [run_dir]
    runs = sorted(sub for sub in run_dir.iterdir() if (sub / METRICS_FILE).is_file())
    if not runs:
        raise RadarError(f"no {METRICS_FILE} in {run_dir} or its subfolders; train into it "
                         f"first (radar train --set output_dir={run_dir}), or pass the run "
                         f"folder that holds {METRICS_FILE}")
    return runs


def refuse_curve_over_run(target: Path, run: Path) -> None:
    """The curve never replaces the metrics it plots or another file of the run."""
    from radar.fsutil import refuse_overwrite
    from radar.metrics_log import METRICS_FILE
    from radar.rundir import run_own_files

    refuse_overwrite(target, [("the metrics it plots", run / METRICS_FILE)]
                     + [("a file of the run", path) for path in run_own_files(run)])


def plot_run_curve(run: Path, output: Path, title: str) -> None:
    from radar.fsutil import atomic_write_bytes
    from radar.metrics_log import METRICS_FILE, read_metrics
    from radar.report.plots import training_curve

    records = read_metrics(run)
    if not any(r.get("kind") in ("train", "val") for r in records):
        raise RadarError(f"no training records in {run / METRICS_FILE}; it holds no 'train' "
                         f"or 'val' entries (did training log at least one interval?)")
    atomic_write_bytes(output, training_curve(records, title=title))


@click.command("plot-curve")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help=f"PNG to write (default RUN_DIR/{CURVE_FILE}).")
def plot_curve_command(run_dir: Path, output: Path | None) -> None:
    """Plot the training curve of RUN_DIR from its metrics.jsonl.

    Train loss per log interval, validation and train-eval loss, the success bars
    (train 0.5, validation 0.6) and the learning rate, against step.

    A multi-detector run trains each detector into RUN_DIR/NAME: when RUN_DIR has no
    metrics.jsonl of its own, every subfolder that has one is plotted into
    RUN_DIR/NAME/training_curve.png (--output is then refused; pass RUN_DIR/NAME to
    choose the file of one detector).
    """
    runs = curve_runs(run_dir)
    if output is not None and (len(runs) > 1 or runs[0] != run_dir):
        names = ", ".join(run.name for run in runs)
        raise RadarError(f"--output names one file but {run_dir} holds a run per detector "
                         f"({names}); drop --output, or pass {runs[0]} to plot one of them")
    for run in runs:
        target = output or run / CURVE_FILE
        refuse_curve_over_run(target, run)
        plot_run_curve(run, target, title=f"Training curve: {run.resolve().name}")
        console.print(f"wrote {target}")
