"""``radar convert``: public benchmark formats into RADAR day files plus a label file.

Raw log lines go through ``radar ingest`` instead; these commands take data that is
already parsed into log keys. Each writes a training day and a test day (dated so the
date split trains on the first and reports on the second) and ``labels.csv`` for
``radar run --labels``.
"""

from __future__ import annotations

from pathlib import Path

import click

from radar.console import console

_OUT = click.option("--out", "out_dir", required=True,
                    type=click.Path(file_okay=False, path_type=Path),
                    help="Folder for the day files and labels.csv.")


@click.group("convert")
def convert_command() -> None:
    """Convert public benchmark data (already parsed into log keys) into day files.

    \b
    radar convert hdfs-100k sessions.jsonl --out DIR
    radar convert deeplog --normal hdfs_train --abnormal hdfs_test_abnormal --out DIR
    """


def _report(counts: dict[str, int], out_dir: Path) -> None:
    console.print(f"wrote {counts['train']:,} training and {counts['test']:,} test sessions "
                  f"to {out_dir}; labels: {out_dir / 'labels.csv'}")
    console.print(f"next: radar run --data {out_dir} --labels {out_dir / 'labels.csv'}")


@convert_command.command("hdfs-100k")
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@_OUT
def hdfs_100k_command(source: Path, out_dir: Path) -> None:
    """HDFS_100k JSON Lines ({"block_id", "split", "label", "events"}) into day files.

    Also writes anomaly_label.csv (BlockId,Label), which joins sessions made by
    `radar ingest --preset hdfs` on their block id.
    """
    from radar.data.convert import convert_hdfs_100k

    _report(convert_hdfs_100k(source, out_dir), out_dir)


@convert_command.command("deeplog")
@click.option("--normal", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Key-sequence file of normal sessions (repeatable).")
@click.option("--abnormal", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Key-sequence file of abnormal sessions (repeatable).")
@click.option("--train-fraction", default=0.5, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of the normal sessions that trains; the rest are tested.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--service", default="hdfs", show_default=True, help="service_name to give.")
@_OUT
def deeplog_command(normal: tuple[Path, ...], abnormal: tuple[Path, ...], train_fraction: float,
                    seed: int, service: str, out_dir: Path) -> None:
    """DeepLog-style key-sequence files (one session per line) into day files."""
    from radar.data.convert import convert_key_sequences

    _report(convert_key_sequences(list(normal), list(abnormal), out_dir,
                                  train_fraction=train_fraction, seed=seed, service=service),
            out_dir)
