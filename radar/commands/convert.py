"""``radar convert``: data in other formats into RADAR day files plus a label file.

Raw log lines go through ``radar ingest`` instead; converters take data that is
already parsed into log keys. Each input format is a converter registered through the
``register_converters`` hook (:mod:`radar.data.convert` has the built-in ones), so this
group lists its subcommands from the registry. Each writes a training day and a test
day (dated so the date split trains on the first and reports on the second) and
``labels.csv`` for ``radar run --labels``.
"""

from __future__ import annotations

from pathlib import Path

import click

from radar.console import console

_OUT = click.Option(["--out", "out_dir"], required=True,
                    type=click.Path(file_okay=False, path_type=Path),
                    help="Folder for the day files and labels.csv.")


_FORCE = click.Option(["--force"], is_flag=True,
                      help="Write into --out even when it holds another dataset's files.")


def _converters() -> dict[str, type]:
    from radar.plugins import get_plugin_manager

    return get_plugin_manager().converters()


def _report(counts: dict[str, int], out_dir: Path) -> None:
    from radar.data.labels import LABELS_NAME

    console.print(f"wrote {counts['train']:,} training and {counts['test']:,} test sessions "
                  f"to {out_dir}; labels: {out_dir / LABELS_NAME}", highlight=False)
    console.print(f"next: radar run --data {out_dir} --labels {out_dir / LABELS_NAME}",
                  highlight=False)


def _command(converter: type) -> click.Command:
    """The ``radar convert NAME`` subcommand of one registered converter."""

    def run(out_dir: Path, force: bool, **options) -> None:
        from radar.data.files import refuse_foreign_dataset

        if not force:
            refuse_foreign_dataset(out_dir, "convert would replace its day files and "
                                   "labels.csv")
        _report(converter().convert(out_dir, **options), out_dir)

    return click.Command(converter.name, callback=run, help=converter.__doc__,
                         params=[*converter.parameters(), _OUT, _FORCE])


class ConvertGroup(click.Group):
    """A group whose subcommands are the registered converters."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_converters())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        converter = _converters().get(name)
        return None if converter is None else _command(converter)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in _converters() and not args[0].startswith("-"):
            raise click.UsageError(f"unknown input format {args[0]!r}; available: "
                                   f"{', '.join(self.list_commands(ctx)) or 'none installed'}",
                                   ctx)
        return super().resolve_command(ctx, args)


@click.group("convert", cls=ConvertGroup)
def convert_command() -> None:
    """Convert data already parsed into log keys into day files (formats: see below).

    \b
    radar convert hdfs-100k sessions.jsonl --out DIR
    radar convert deeplog --normal hdfs_train --abnormal hdfs_test_abnormal --out DIR
    """
