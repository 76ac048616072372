"""Built-in CLI commands; each module exposes click commands, collected here."""

from radar.commands.convert import convert_command
from radar.commands.data import (
    prepare_command,
    split_command,
    synth_command,
    validate_command,
)
from radar.commands.ingest import ingest_command
from radar.commands.jobs import detect_command, run_command, train_command
from radar.commands.plots import plot_curve_command
from radar.commands.plugins import plugins_command
from radar.commands.report import analyze_command, evaluate_command, report_command
from radar.commands.review import review_command
from radar.commands.serve import serve_command
from radar.commands.watch import watch_command

ALL_COMMANDS = [plugins_command, train_command, detect_command, run_command,
                synth_command, validate_command, split_command, prepare_command,
                plot_curve_command, evaluate_command, analyze_command, report_command,
                convert_command, ingest_command, serve_command, watch_command,
                review_command]
