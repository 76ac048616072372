"""``radar plugins``: list loaded plugins, their versions and what they register."""

from __future__ import annotations

import json

import click

from radar.console import console


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins, their versions, hooks and registered names."""
    from rich.table import Table

    from radar.plugins import get_plugin_manager

    pm = get_plugin_manager()
    infos = pm.plugin_infos()
    if as_json:
        payload = {
            "plugins": [info.__dict__ for info in infos],
            "failures": [failure.__dict__ for failure in pm.failures],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        table = Table(title="RADAR plugins")
        for column in ("plugin", "version", "hooks", "detectors", "scorers"):
            table.add_column(column)
        for info in infos:
            table.add_row(info.name, info.version or "-", ", ".join(info.hooks),
                          ", ".join(info.detectors) or "-", ", ".join(info.scorers) or "-")
        console.print(table)
        for failure in pm.failures:
            console.print(f"[red]plugin {failure.name!r} failed to load:[/red] {failure.error}")
    if pm.failures:
        raise SystemExit(1)
