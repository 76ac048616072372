"""The run folder: the one place that knows its layout.

A run folder is a run's ``output_dir``::

    config.yaml            the resolved config of the run
    train_files.txt        the split (radar.data.split writes, through these names)
    val_files.txt
    anomaly_results.json   the run's answer: the only detector's, or the ensemble's
    calibration.json       how the threshold of that answer was set
    NAME.calibration.json  the same for results `radar detect --output` wrote as NAME.json
    summary.json           the end-of-run summary of that answer
    ensemble.json          several detectors: the fitted combination
    quality.json           label-free quality estimate (injected corruptions)
    review.csv             `radar review`'s sessions for an operator to label
    report.{html,json,md}
    NAME/                  several detectors: each one's own folder with the same
                           files (checkpoints, metrics.jsonl, results, summary)

One detector trains into the run folder itself; several train into ``NAME/``.
Everything that reads or writes a run goes through :class:`RunDir`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radar.config import read_yaml
from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.metrics_log import METRICS_FILE

CONFIG = "config.yaml"
TRAIN_LIST = "train_files.txt"
VAL_LIST = "val_files.txt"
RESULTS = "anomaly_results.json"
CALIBRATION = "calibration.json"
SUMMARY = "summary.json"
ENSEMBLE = "ensemble.json"
QUALITY = "quality.json"
REVIEW = "review.csv"
REPORTS = {"json": "report.json", "markdown": "report.md", "html": "report.html"}
BEST_CHECKPOINT = "best_model.pt"
LAST_CHECKPOINT = "last.pt"

# Files of a run (and of its detectors' folders) that no output may replace; its results
# may be scored again in place (their calibration.json goes with them).
RUN_OWN_FILES = (CONFIG, TRAIN_LIST, VAL_LIST, CALIBRATION, SUMMARY, ENSEMBLE, QUALITY, REVIEW,
                 METRICS_FILE, *REPORTS.values())

RUN_FIX = ("point at the output_dir of a finished `radar run` (or `radar train`): a "
           "multi-detector run holds ensemble.json, a single-detector run best_model.pt")


def detector_folder(base: Path, name: str, detectors: list[str]) -> Path:
    """One detector trains into ``base``; several each into ``base/NAME``."""
    return base / name if len(detectors) > 1 else base


def best_checkpoint(folder: Path) -> Path:
    """A detector folder's checkpoint to use: the best one, else the last one."""
    for name in (BEST_CHECKPOINT, LAST_CHECKPOINT):
        if (folder / name).is_file():
            return folder / name
    raise RadarError(f"no trained checkpoint ({BEST_CHECKPOINT} or {LAST_CHECKPOINT}) in "
                     f"{folder}")


def calibration_for(results: str | Path) -> Path:
    """The calibration record of a results file, beside it: ``anomaly_results.json`` has
    ``calibration.json`` (a run's pair), any other ``NAME.json`` its own
    ``NAME.calibration.json``, so results scored into a run folder under another name
    never rewrite the run's."""
    results = Path(results)
    if results.name == RESULTS:
        return results.with_name(CALIBRATION)
    return results.with_name(f"{results.stem}.calibration.json")


def run_own_files(source: str | Path) -> list[Path]:
    """What an output of scoring with ``source`` (a checkpoint, an ``ensemble.json`` or a
    run folder) must not replace: ``source`` and the run's config, checkpoints, ensemble,
    calibration and the rest of :data:`RUN_OWN_FILES`, in the run folder and its
    detectors' folders."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    files = [] if source.is_dir() else [source]
    folders = [folder]
    if not (folder / CONFIG).is_file() and (folder.parent / CONFIG).is_file():
        folders.append(folder.parent)        # a detector's folder of a multi-detector run
    for base in folders:
        subfolders = ([path for path in base.iterdir() if path.is_dir()]
                      if (base / CONFIG).is_file() else [])
        for place in (base, *subfolders):
            files += [place / name for name in RUN_OWN_FILES]
            files += place.glob("*.pt")
    return files


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object of the run (every JSON file a run writes is one), or None when the
    file is not there; anything else is one line naming the file."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:      # not UTF-8, not JSON, nested too deep
        raise RadarError(f"{path} is damaged ({exc}); re-run the step that writes it") from None
    if not isinstance(data, dict):
        raise RadarError(f"{path} is damaged (a JSON {type(data).__name__}, not an object); "
                         "re-run the step that writes it")
    return data


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False))


# Sections of a run's config.yaml that are mappings (readers take keys from them).
RUN_CONFIG_SECTIONS = ("data", "training", "detection", "ensemble", "severity", "source",
                       "model", "models")
# Paths in it that readers open (a report's day files, cache and labels).
RUN_CONFIG_PATHS = (("data", "preprocessed_dir"), ("data", "cache_dir"),
                    ("data", "label_file"), ("source", "index"))


def check_run_config(path: Path, config: dict) -> dict:
    """A run's config as read back: the shapes readers rely on, or one line naming the
    file and the key."""
    for section in RUN_CONFIG_SECTIONS:
        if not isinstance(config.get(section) or {}, dict):
            raise RadarError(f"{path} is damaged: {section!r} is not a mapping; re-run "
                             "`radar run`, or restore the file")
    for section, key in RUN_CONFIG_PATHS:
        value = (config.get(section) or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise RadarError(f"{path} is damaged: '{section}.{key}' is not a path; re-run "
                             "`radar run`, or restore the file")
    detectors = config.get("detectors")
    if detectors is not None and not (isinstance(detectors, list) and detectors and all(
            isinstance(name, str) for name in detectors)):
        raise RadarError(f"{path} is damaged: 'detectors' is not a list of detector names; "
                         "re-run `radar run`, or restore the file")
    return config


@dataclass
class RunDir:
    """Paths of one run folder, and the few facts its config.yaml fixes."""

    path: Path
    detectors: list[str]

    @classmethod
    def for_config(cls, output_dir: str | Path, detectors: list[str]) -> RunDir:
        """The folder a run with these detectors writes (it need not exist yet)."""
        return cls(Path(output_dir), list(detectors))

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder; its detectors come from its config.yaml."""
        path = Path(path)
        if path.is_file():
            raise RadarError(f"{path} is a file; give the run folder it is in ({path.parent})")
        if not path.is_dir():
            raise RadarError(f"run folder {path} does not exist; {RUN_FIX}")
        config = cls(path, []).config()
        if config is None:
            raise RadarError(f"{path} holds no {CONFIG}; {RUN_FIX}")
        return cls(path, list(config.get("detectors") or ["logbert"]))

    # -- files of the run as a whole ------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def config(self) -> dict | None:
        """The run's resolved config as plain data (None before the run started)."""
        if not self.config_path.is_file():
            return None
        try:
            config = read_yaml(self.config_path)
        except RadarError as exc:
            raise RadarError(f"{exc} (the run's config; `radar run` writes it)") from None
        config = check_run_config(self.config_path, config)
        base = self.launch_folder(config)
        if base is not None:
            for section, key in RUN_CONFIG_PATHS:
                value = (config.get(section) or {}).get(key)
                if value and not Path(value).is_absolute():
                    config[section][key] = str(base / value)
        return config

    def launch_folder(self, config: dict) -> Path | None:
        """The folder the run was started from, where its config's relative paths
        (``runs/demo/data``) point: this folder less its relative ``output_dir``. So
        ``radar serve --run /abs/runs/demo`` finds the day files from any working
        folder. None when ``output_dir`` is absolute or the folder was moved or renamed
        (relative paths then stay relative to the working folder, as before)."""
        output = config.get("output_dir")
        if not isinstance(output, str) or not output or Path(output).is_absolute():
            return None
        tail = Path(output).parts
        here = self.path.resolve().parts
        if ".." in tail or len(tail) >= len(here) or here[-len(tail):] != tail:
            return None
        return Path(*here[:-len(tail)])

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def calibration(self) -> Path:
        return calibration_for(self.results)

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def ensemble_state(self) -> Path:
        return self.path / ENSEMBLE

    @property
    def quality(self) -> Path:
        return self.path / QUALITY

    @property
    def review(self) -> Path:
        return self.path / REVIEW

    def report(self, kind: str) -> Path:
        return self.path / REPORTS[kind]

    def split_list(self, which: str) -> Path:
        return self.path / (TRAIN_LIST if which == "train" else VAL_LIST)

    @property
    def is_ensemble(self) -> bool:
        return len(self.detectors) > 1

    # -- per detector ----------------------------------------------------------------
    def detector_dir(self, name: str) -> Path:
        return detector_folder(self.path, name, self.detectors)

    def detector_dirs(self) -> dict[str, Path]:
        return {name: self.detector_dir(name) for name in self.detectors}

    def checkpoint(self, name: str) -> Path:
        return best_checkpoint(self.detector_dir(name))

    def checkpoints(self) -> dict[str, Path]:
        """Each detector's checkpoint; a clear error when one is missing."""
        out = {}
        for name in self.detectors:
            try:
                out[name] = self.checkpoint(name)
            except RadarError:
                raise RadarError(f"{self.path}: detector {name} has no trained checkpoint in "
                                 f"{self.detector_dir(name)}; {RUN_FIX}") from None
        return out

    def detector_results(self, name: str) -> Path:
        """Where detector ``name`` writes its own results (the run's when it is alone)."""
        return self.detector_dir(name) / RESULTS

    def detector_summary(self, name: str) -> Path:
        return self.detector_dir(name) / SUMMARY
