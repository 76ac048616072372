"""Built-in CLI commands; each module exposes click commands, collected here."""

from radar.commands.plugins import plugins_command

ALL_COMMANDS = [plugins_command]
