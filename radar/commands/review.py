"""`radar review RUN_DIR`: the top flagged sessions as a CSV an operator labels."""

from __future__ import annotations

import click

from radar.console import console


@click.command("review")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--top", "top", default=50, show_default=True, type=click.IntRange(0, 100000),
              help="How many flagged sessions (highest scores first).")
@click.option("--sample-normal", default=0, show_default=True, type=click.IntRange(0, 100000),
              help="Also this many unflagged sessions drawn at random, so reviewers confirm "
                   "normals too (a threshold learns from both).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Where to write the CSV (default: RUN_DIR/review.csv).")
@click.option("--lines", "log_lines", default=5, show_default=True, type=click.IntRange(0, 50),
              help="Raw log lines shown around the most surprising event (0: none).")
@click.option("--seed", default=0, show_default=True, help="Seed of the unflagged sample.")
@click.option("--force", is_flag=True, help="Replace an existing review file.")
def review_command(run_dir, top, sample_normal, output, log_lines, seed, force):
    """Write the sessions to review as a label file with an empty label column.

    Fill the label column (1/0, anomaly/normal, yes/no, true/false; blank = not reviewed
    yet) and pass the file back: radar run --labels review.csv.
    """
    from radar.report.review import review_run

    written = review_run(run_dir, output=output, top=top, sample_normal=sample_normal,
                         seed=seed, log_lines=log_lines, overwrite=force)
    console.print(f"wrote {written.path}: {written.flagged} flagged sessions (of "
                  f"{written.n_flagged}) and {written.normal} unflagged drawn at random, of "
                  f"{written.n_sessions} scored", markup=False)
    console.print("fill its label column (1 = anomaly, 0 = normal; leave blank to skip), "
                  f"then: radar run --labels {written.path} "
                  "--set detection.threshold_method=best_f1", markup=False)
