"""Built-in CLI commands; each module exposes click commands, collected here."""

from radar.commands.data import (
    prepare_command,
    split_command,
    synth_command,
    validate_command,
)
from radar.commands.jobs import detect_command, run_command, train_command
from radar.commands.plugins import plugins_command

ALL_COMMANDS = [plugins_command, train_command, detect_command, run_command,
                synth_command, validate_command, split_command, prepare_command]
