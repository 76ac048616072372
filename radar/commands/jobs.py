"""`radar train`, `radar detect` and `radar run`: thin commands over :mod:`radar.pipeline`."""

from __future__ import annotations

from pathlib import Path

import click

from radar.console import console, data_text
from radar.rundir import RESULTS


def config_options(func):
    """--config FILE and repeatable --set section.key=value, shared by job commands."""
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        help="Override a config value, e.g. --set training.batch_size=16.")(func)
    return click.option("--config", "config_path", type=click.Path(dir_okay=False),
                        help="YAML config (see configs/).")(func)


def data_options(func):
    func = click.option("--device", help="auto, cpu, cuda or cuda:N (training.device).")(func)
    func = click.option("--source-index", type=click.Path(dir_okay=False),
                        help="A `radar source index` file: explained events name the code "
                             "that logged them (source.index).")(func)
    func = click.option("--labels", type=click.Path(dir_okay=False),
                        help="Label CSV: file,session_id,label or BlockId,Label "
                             "(data.label_file); its normal sessions train "
                             "(data.train_filter=labels) unless --set says otherwise.")(func)
    func = click.option("--data", type=click.Path(),
                        help="Folder of day files (data.preprocessed_dir).")(func)
    return click.option("--detector", "detectors", multiple=True,
                        help="Detector to use (repeatable); see `radar plugins`.")(func)


def load_job_config(config_path, overrides, detectors=(), data=None, labels=None, device=None,
                    source_index=None):
    """The config file (or defaults) with --set overrides and the option shortcuts applied."""
    from radar.config import load_config

    extra = []
    if labels and not any(item.startswith("data.train_filter=") for item in overrides):
        # A label file chooses the normal sessions to train on, unless told otherwise.
        extra.append("data.train_filter=labels")
    extra += list(overrides)
    if detectors:
        extra.append("detectors=" + ",".join(detectors))
    if data:
        extra.append(f"data.preprocessed_dir={data}")
    if labels:
        extra.append(f"data.label_file={labels}")
    if device:
        extra.append(f"training.device={device}")
    if source_index:
        extra.append(f"source.index={source_index}")
    return load_config(config_path, extra)


def print_config(config) -> None:
    from rich.syntax import Syntax

    from radar.config import dump_config

    console.print(Syntax(dump_config(config), "yaml", background_color="default"))


def train_job(config, resume):
    """What `radar train` and `radar run` share; exit 130 if training was interrupted."""
    from radar import pipeline
    from radar.data.cache_build import default_workers

    run = pipeline.train_from_config(config, resume=resume, workers=default_workers(),
                                     log=console.log)
    if run.interrupted:
        raise SystemExit(130)
    return run


@click.command("train")
@config_options
@data_options
@click.option("--resume", help="Checkpoint to continue from, or 'auto' for the newest.")
def train_command(config_path, overrides, detectors, data, labels, device, source_index,
                  resume):
    """Train detectors on the training days of a config; checkpoints go to output_dir.

    The threshold is calibrated at the end on normal sessions of the training days
    held out from training, and stored in the best checkpoint.
    """
    config = load_job_config(config_path, overrides, detectors, data, labels, device,
                             source_index)
    print_config(config)
    run = train_job(config, resume)
    for item in run.trained:
        console.log(f"{item.name}: best checkpoint {item.checkpoint}")


@click.command("detect")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Trained checkpoint (best_model.pt) of one detector.")
@click.option("--ensemble", "ensemble_path", type=click.Path(),
              help="A multi-detector run folder (or its ensemble.json): score with every "
                   "detector and combine as that run did.")
@click.option("--input", "input_path", required=True, type=click.Path(),
              help="A day file or a folder of day files.")
@click.option("--output", default=RESULTS, show_default=True,
              type=click.Path(dir_okay=False), help="Results file.")
@click.option("--threshold", type=float, help="Override the calibrated threshold.")
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl"]), default="json",
              show_default=True)
@click.option("--cache-dir", help="Prepared-cache folder (default: the checkpoint's).")
@click.option("--labels", type=click.Path(dir_okay=False),
              help="Label CSV to print precision/recall/F1 against.")
@click.option("--device", default="auto", show_default=True)
@click.option("--pattern", default="preprocessed_logs_*.json", show_default=True)
@click.option("--source-index", type=click.Path(dir_okay=False),
              help="A `radar source index` file: explained events name the code that logged "
                   "them (default: the run's source.index).")
@click.option("--drift-share", type=click.FloatRange(0, 1),
              help="An event never seen in training that this share of a day's sessions "
                   "log is drift: reported and scored around (default: the run's "
                   "detection.drift_share; 0 turns it off).")
def detect_command(checkpoint, ensemble_path, input_path, output, threshold, fmt, cache_dir,
                   labels, device, pattern, source_index, drift_share):
    """Score sessions with a trained detector (or a run's ensemble); one result per session."""
    from radar import pipeline
    from radar.data.cache_build import default_workers
    from radar.device import resolve_device
    from radar.errors import ConfigError
    from radar.report.summary import summary_table
    from radar.scoring.run import RunScorer

    if (checkpoint is None) == (ensemble_path is None):
        raise ConfigError("pass exactly one of --checkpoint CKPT (one detector) or "
                          "--ensemble RUN_DIR (a multi-detector run)")
    dev = resolve_device(device)
    scorer = (RunScorer.from_checkpoint(checkpoint, dev, threshold) if checkpoint
              else RunScorer.from_ensemble(ensemble_path, dev, threshold))
    if drift_share is not None:
        scorer.config.detection.drift_share = drift_share
    summary = pipeline.detect_files(scorer, input_path, Path(output), pattern=pattern, fmt=fmt,
                                    cache_dir=cache_dir, labels=labels,
                                    workers=default_workers(), log=console.log,
                                    source_index=source_index)
    console.print(summary_table(summary))
    console.log(f"wrote {summary['sessions']} results to {data_text(output)}")


@click.command("run")
@config_options
@data_options
@click.option("--resume", help="Continue training from a checkpoint, or 'auto'.")
def run_command(config_path, overrides, detectors, data, labels, device, source_index, resume):
    """Prepare, split, train, calibrate and detect: the main job.

    With neither --config nor --data it runs the built-in demo: it generates
    labelled demo data and trains a small model, printing F1 at the end.
    """
    from radar import pipeline
    from radar.config import shipped_config
    from radar.demo import ensure_demo_data, ensure_demo_source
    from radar.report.build import write_report
    from radar.report.summary import summary_table

    demo = config_path is None and data is None
    config = load_job_config(shipped_config("demo") if demo else config_path, overrides,
                             detectors, data, labels, device, source_index)
    if demo and not config.data.label_file:
        config.data.label_file = str(ensure_demo_data(config, console.log))
    if demo and not config.source.index:
        index = ensure_demo_source(config, console.log)
        config.source.index = str(index) if index else None
    print_config(config)
    run = train_job(config, resume)
    if not run.dist_info.is_main:
        return
    summary = pipeline.run_validation(run, log=console.log)
    if "per_detector" in summary:
        console.print(detectors_table(summary))
    console.print(summary_table(summary))
    paths = write_report(run.run.path)
    console.log(f"results in {run.run.results}; report in {paths['html']}")
    if "metrics" in summary:
        m = summary["metrics"]
        auc = "-" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
        console.print(f"[bold]{summary['detector']}[/bold] on the validation days: precision "
                      f"{m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, "
                      f"ROC-AUC {auc} (labels: {summary['label_source']})")


def detectors_table(summary: dict):
    """Each detector side by side with the ensemble (labelled runs only show metrics)."""
    from rich.table import Table

    table = Table(title="Detectors and ensemble on the validation days")
    for column in ("detector", "flagged", "precision", "recall", "F1", "ROC-AUC"):
        table.add_column(column, justify="left" if column == "detector" else "right")
    rows = list(summary["per_detector"].items()) + [("ensemble", summary)]
    for name, entry in rows:
        m = entry.get("metrics")
        cells = ([f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
                  "-" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"] if m else ["-"] * 4)
        table.add_row(f"[bold]{name}[/bold]" if name == "ensemble" else name,
                      str(entry["anomalies"]), *cells)
    return table
