"""The ``radar`` command-line tool: a thin click group over the library.

Commands live in :mod:`radar.commands`; plugins may add more through the
``register_commands`` hook. Any :class:`radar.errors.RadarError` becomes a one-line
message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import click

from radar import __version__
from radar.errors import RadarError


class RadarGroup(click.Group):
    """A click group that turns RadarError into a clean message and exit code; control
    characters in any error message are shown as escapes."""

    def invoke(self, ctx: click.Context):
        from radar.console import printable

        try:
            return super().invoke(ctx)
        except RadarError as exc:     # messages name files and values from data
            click.secho(f"Error: {printable(exc)}", fg="red", err=True)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:    # "Path 'evil\x1b[2J' does not exist."
            exc.message = printable(exc.message)
            raise


@click.group(cls=RadarGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="radar")
@click.option("--plugin", "plugin_modules", multiple=True, metavar="MODULE",
              help="Load a local plugin module (repeatable); RADAR_PLUGINS does the same.")
def cli(plugin_modules: tuple[str, ...]) -> None:
    """RADAR: log anomaly detection for microservice systems.

    Typical flow: radar synth / radar validate / radar prepare / radar run.
    """
    if plugin_modules:
        from radar.plugins import add_plugin_modules

        add_plugin_modules(plugin_modules)


def _register_builtin_commands() -> None:
    from radar.commands import ALL_COMMANDS
    from radar.commands.source import source_group

    for command in ALL_COMMANDS:
        cli.add_command(command)
    cli.add_command(source_group)


def _register_plugin_commands() -> None:
    from radar.plugins import get_plugin_manager

    get_plugin_manager().hook.register_commands(cli=cli)


_register_builtin_commands()
_register_plugin_commands()


def main() -> None:
    cli(prog_name="radar")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
