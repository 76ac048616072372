"""Run configuration: YAML files, dotted ``--set`` overrides, validation with clear errors.

Sections are defaulted dataclasses. Unknown keys and wrongly typed values raise
:class:`ConfigError` naming the key and, for typos, the closest valid key. The
``model`` section belongs to the detector and is validated against its
``config_class`` (see :func:`build_section`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radar.errors import ConfigError
from radar.fsutil import atomic_write_text


class SectionChecks:
    """Range checks shared by config sections; errors name ``section.key``."""

    section: typing.ClassVar[str] = "model"

    def check_positive(self, *keys: str) -> None:
        for key in keys:
            self.check_number(key, minimum=1)

    def check_number(self, key: str, *, minimum: float | None = None,
                     maximum: float | None = None, above: float | None = None,
                     below: float | None = None) -> None:
        """``key`` is finite and within the bounds (``minimum``/``maximum`` inclusive,
        ``above``/``below`` exclusive); None (an optional value left unset) passes."""
        value = getattr(self, key)
        if value is None:
            return
        bounds = [f">= {minimum}" if minimum is not None else "",
                  f"> {above}" if above is not None else "",
                  f"<= {maximum}" if maximum is not None else "",
                  f"< {below}" if below is not None else ""]
        ok = (math.isfinite(value) and (minimum is None or value >= minimum)
              and (above is None or value > above) and (maximum is None or value <= maximum)
              and (below is None or value < below))
        if not ok:
            wanted = " and ".join(bound for bound in bounds if bound)
            raise ConfigError(f"{self.section}.{key} must be a finite number"
                              f"{' ' + wanted if wanted else ''}, got {value!r}")

    def check_dropout(self, *keys: str) -> None:
        for key in keys:
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"{self.section}.{key} must be in [0, 1), "
                                  f"got {getattr(self, key)}")


@dataclass
class TrainingConfig(SectionChecks):
    batch_size: int = 32
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    num_epochs: int = 3
    total_steps: int = 10000
    warmup_ratio: float = 0.05
    min_lr: float = 1e-6
    max_grad_norm: float = 1.0
    grad_accum_steps: int = 1
    log_interval: int = 50
    save_interval: int = 500
    eval_interval: int = 0          # 0: validate at each epoch end only
    keep_checkpoints: int = 3       # newest step checkpoints kept; 0 keeps all
    # Newest epoch_N.pt files kept (each holds the optimiser state: a BERT-base epoch is
    # ~1.1 GB); best_model.pt and last.pt are always kept beside them. 0 keeps all.
    keep_epoch_checkpoints: int = 2
    num_workers: int = 4
    precision: str = "auto"         # auto | fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    compile: bool = False
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    seed: int = 42
    # Trimmed training: once TRIM_START of total_steps have passed, each batch's worst-
    # fitted share of sessions (e.g. 0.05) is left out of the loss, so anomalies among the
    # training sessions are not learned as normal. 0 (default): every session counts.
    trim_fraction: float = 0.0

    section: typing.ClassVar[str] = "training"

    def __post_init__(self) -> None:
        self.check_positive("batch_size", "num_epochs", "total_steps", "grad_accum_steps",
                            "log_interval")
        self.check_number("learning_rate", above=0)
        self.check_number("min_lr", minimum=0, maximum=self.learning_rate)
        self.check_number("warmup_ratio", minimum=0, maximum=1)
        self.check_number("trim_fraction", minimum=0, below=0.5)
        for key in ("weight_decay", "max_grad_norm", "save_interval", "eval_interval",
                    "keep_checkpoints", "keep_epoch_checkpoints", "num_workers", "seed"):
            self.check_number(key, minimum=0)


# data.contamination when it is not set and no label file covers the training days.
DEFAULT_CONTAMINATION = 0.05


@dataclass
class DataConfig(SectionChecks):
    preprocessed_dir: str = "../output"
    file_pattern: str = "preprocessed_logs_*.json"
    max_seq_length: int = 512
    limit_files: int = 0            # 0: all files; N: the N most recent
    cache_dir: str = "radar_cache"
    split: str = "date"             # date: latest days validate | random
    val_fraction: float = 0.1
    split_seed: int = 42
    calibration_fraction: float = 0.1   # of training sessions held out to set thresholds
    # sessions: a random share of every training day; days: the newest training days
    # whole (at least 3 training days), so thresholds are set on days never trained on
    calibration_split: str = "days"
    # Events rarer than this share of the training sessions stay out of the vocabulary
    # and score as unseen (0: every event seen once is known). See docs/lab/benchmarks.md.
    min_event_share: float = 0.0
    # Share of the sessions of the training days presumed anomalous: that share with the
    # rarest transitions makes no event known and sets no threshold (radar/data/
    # screen.py). None: 0.05, or 0 when a label file covers every training-day session.
    contamination: float | None = None
    # Which sessions train: all (default: nothing tells anomalies apart without labels;
    # has_error does not) | labels (--labels sets it) | no_error | no_error_no_warn
    train_filter: str = "all"
    label_file: str | None = None
    strict: bool = False

    section: typing.ClassVar[str] = "data"

    def __post_init__(self):
        self.check_number("max_seq_length", minimum=3)      # CLS, one event, SEP
        self.check_number("limit_files", minimum=0)
        self.check_number("val_fraction", above=0, below=1)
        self.check_number("calibration_fraction", minimum=0, below=1)
        self.check_number("min_event_share", minimum=0, below=0.1)
        self.check_number("contamination", minimum=0, below=0.5)

    def screen_share(self, fully_labelled: bool) -> float:
        """``contamination`` as applied (see its comment above)."""
        if self.contamination is not None:
            return float(self.contamination)
        return 0.0 if fully_labelled else DEFAULT_CONTAMINATION


@dataclass
class DetectionConfig(SectionChecks):
    # How the threshold is set on sessions of the training days held out from
    # training (radar/scoring/calibration.py): percentile | tail | best_f1 | fixed.
    threshold_method: str = "percentile"
    # tail and percentile: 100 - this = the false-alarm budget (% of normal sessions)
    threshold_percentile: float = 99.5
    threshold_value: float | None = None # fixed: the threshold itself
    batch_size: int = 128
    format: str = "json"                 # json | jsonl
    # Held-out sessions copied and corrupted to estimate recall without labels
    # (quality.json, radar/quality/inject.py); 0 turns the estimate off.
    injected_sessions: int = 1000
    # An event never seen in training that at least this share of a day's sessions log
    # (from its first appearance on, and at least 20 sessions) is drift, a new log line:
    # reported, and that day is scored without it (radar/scoring/drift.py). 0: off.
    drift_share: float = 0.05

    section: typing.ClassVar[str] = "detection"

    def __post_init__(self) -> None:
        self.check_number("threshold_percentile", minimum=0, maximum=100)
        self.check_number("threshold_value")
        self.check_positive("batch_size")
        self.check_number("injected_sessions", minimum=0)
        self.check_number("drift_share", minimum=0, maximum=1)


ENSEMBLE_THRESHOLDS = ("knee", "detection")


@dataclass
class EnsembleConfig:
    """How several detectors' scores become one (radar/scoring, plugins/ensemble)."""

    # A registered combiner: mean | max | weighted_mean | rank_average | vote (see `radar
    # plugins`). mean ranks better than max at 1%, 5% and 10% anomalies without labels
    # (hindsight F1 and ROC-AUC, docs/lab/benchmarks.md, "Label-free quality, round 5").
    method: str = "mean"
    normalize: str = "ecdf"         # ecdf (-log10 share of normal sessions) | robust_z
    weights: dict = field(default_factory=dict)   # weighted_mean: detector -> weight
    # How the ensemble's threshold is set: knee (without a label file: the knee of the
    # held-out day's combined scores, which presumes no anomaly rate; with labels,
    # detection.threshold_method) | detection (always detection.threshold_method).
    # See radar/scoring/calibration.py and docs/lab/benchmarks.md.
    threshold: str = "knee"

    def __post_init__(self) -> None:
        if self.threshold not in ENSEMBLE_THRESHOLDS:
            raise ConfigError(f"ensemble.threshold must be one of "
                              f"{', '.join(ENSEMBLE_THRESHOLDS)}, got {self.threshold!r}")


@dataclass
class SeverityConfig:
    """Severity levels of ensemble results (plugins/ensemble/severity.py)."""

    scorer: str = "service_weighted"
    # Smallest weighted margin over the threshold for each level (ecdf scale: 1 = 10x rarer).
    levels: dict = field(default_factory=lambda: {"LOW": 0.0, "MEDIUM": 1.0, "HIGH": 2.0,
                                                  "CRITICAL": 3.0})
    service_weights: dict = field(default_factory=dict)   # service -> weight (> 0)
    default_weight: float = 1.0
    error_raise: int = 1            # levels added for sessions with ERROR lines
    warn_raise: int = 0             # levels added for sessions with WARN lines (no ERROR)


@dataclass
class SourceConfig(SectionChecks):
    """Links explained events to the logging statements that printed them (radar/source)."""

    section: typing.ClassVar[str] = "source"

    index: str | None = None        # a `radar source index` file; None: no links
    templates: str | None = None    # event_id<TAB>template; None: DATA/templates.tsv if any
    min_score: float = 0.6          # below it an event is "no match", not a guess
    line_format: str | None = None  # regex with a content group for original_logs lines
    loggers: list[str] = field(default_factory=list)    # more receiver names that log
    wrappers: list[str] = field(default_factory=list)   # NAME or NAME:LEVEL functions that log

    def __post_init__(self) -> None:
        self.check_number("min_score", minimum=0, maximum=1)


CHOICES = {
    "ensemble.normalize": ("ecdf", "robust_z"),
    "detection.format": ("json", "jsonl"),
    "detection.threshold_method": ("tail", "percentile", "best_f1", "fixed"),
    "training.precision": ("auto", "fp32", "bf16", "fp16"),
    "data.split": ("date", "random"),
    "data.calibration_split": ("sessions", "days"),
    "data.train_filter": ("all", "labels", "no_error", "no_error_no_warn"),
}


@dataclass
class RadarConfig:
    # ``model`` is the model section of the first detector in ``detectors`` (the
    # user's single ``model:`` block); ``models.NAME`` gives any detector its own
    # section and wins over ``model``. See :meth:`model_section`.
    model: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    severity: SeverityConfig = field(default_factory=SeverityConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    output_dir: str = "runs/default"
    detectors: list[str] = field(default_factory=lambda: ["logbert"])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def model_section(self, name: str) -> tuple[dict, str]:
        """The raw model section of detector ``name`` and the config key it came from.

        ``models.NAME`` is the detector's own section; for the first detector the
        keys of ``model`` are laid over it, so ``--set model.KEY=V`` always reaches
        the primary detector.
        """
        section = self.models.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"config section 'models.{name}' must be a mapping, "
                              f"got {section!r}")
        section = dict(section)
        if self.detectors and name == self.detectors[0] and self.model:
            section.update(self.model)
            return section, "model"
        return section, f"models.{name}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it, converted where lossless."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            if option is type(None):
                if value is None:
                    return None
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"config key {key!r} expects {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_type,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        return [_coerce(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} expects a mapping, got {value!r}")
        return value
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):   # YAML 1.1 reads "2e-5" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return build_section(tp, value, key)
        raise ConfigError(f"config section {key!r} must be a mapping, got {value!r}")
    else:
        return value
    raise ConfigError(f"config key {key!r} expects {_type_name(tp)}, got {value!r} "
                      f"({type(value).__name__})")


def _unknown_key(key: str, valid: list[str], prefix: str) -> ConfigError:
    full = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = (f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close
            else f"; valid keys: {', '.join(sorted(valid))}")
    return ConfigError(f"unknown config key {full!r}{hint}")


def build_section(cls: type, data: dict | None, prefix: str = "") -> Any:
    """Instantiate dataclass ``cls`` from ``data``, rejecting unknown keys and bad types."""
    data = data or {}
    if cls is dict:
        return dict(data)
    if not isinstance(data, dict):
        raise ConfigError(f"config section {prefix or 'root'!r} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in valid:
            raise _unknown_key(str(key), valid, prefix)
        full = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _coerce(value, hints[key], full)
        choices = CHOICES.get(full)
        if choices and kwargs[key] not in choices:
            raise ConfigError(f"config key {full!r} must be one of {', '.join(choices)}; "
                              f"got {kwargs[key]!r}")
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.key=value, got {text!r} "
                          "(for example --set training.batch_size=16)")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"--set {text!r} names no key")
    try:
        value = bounded_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({yaml_problem(exc)})"
                          ) from None
    return path, value


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply dotted overrides to a raw config mapping (validated later by :func:`build_config`)."""
    raw = dict(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[:i + 1])!r} is not a section")
            node[part] = child = dict(child)
            node = child
        node[path[-1]] = value
    return raw


# Values a config may expand to, aliases followed: real configs hold hundreds; a YAML
# alias bomb (nine aliases of nine aliases of ... ) billions, anywhere in the tree.
MAX_YAML_VALUES = 100_000


class YamlTooLarge(ValueError):
    """A YAML document whose aliases expand past :data:`MAX_YAML_VALUES`, or into itself."""


def bounded_yaml(text: str) -> Any:
    """``yaml.safe_load`` that first counts the values the document expands to (each alias
    counted as often as it is used) and raises YamlTooLarge past :data:`MAX_YAML_VALUES`,
    or for an alias inside its own anchor, before anything is built."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise YamlTooLarge(f"an alias refers to the value that holds it (line "
                         f"{node.start_mark.line + 1})")
    children: list = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [item for pair in node.value for item in pair]
    open_nodes.add(key)
    total = 1
    for child in children:
        total += _expanded_size(child, sizes, open_nodes)
        if total > MAX_YAML_VALUES:
            raise YamlTooLarge(f"its aliases expand to over {MAX_YAML_VALUES:,} values (a YAML "
                             f"alias bomb? line {node.start_mark.line + 1})")
    open_nodes.discard(key)
    sizes[key] = total
    return total


def yaml_problem(exc: Exception) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split()) or type(exc).__name__


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist; configs/ has examples"
                          ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc}); pass a UTF-8 YAML file"
                          ) from None
    try:
        data = bounded_yaml(text)
    except YamlTooLarge as exc:
        raise ConfigError(f"{path}: {exc}; write the values out instead of nesting aliases"
                          ) from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:   # ValueError: a bad date
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def build_config(raw: dict) -> RadarConfig:
    return build_section(RadarConfig, _moved_keys(raw))


# Keys of the user's plan that belong to one detector: read into that detector's
# section (``models.NAME``) unless the section sets them itself.
MOVED_KEYS = {("training", "mask_prob"): "logbert"}


def _moved_keys(raw: dict) -> dict:
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    for (section, key), detector in MOVED_KEYS.items():
        part = raw.get(section)
        if isinstance(part, dict) and key in part:
            part = dict(part)
            value = part.pop(key)
            raw[section] = part
            models = dict(raw.get("models") or {})
            own = dict(models.get(detector) or {})
            own.setdefault(key, value)
            models[detector] = own
            raw["models"] = models
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
                ) -> RadarConfig:
    """Read ``path`` (or defaults), apply ``--set`` overrides, validate."""
    raw = read_yaml(path) if path is not None else {}
    return build_config(apply_overrides(raw, overrides))


def dump_config(config: RadarConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def save_config(config: RadarConfig, path: str | Path) -> Path:
    """Write the resolved config to ``path`` atomically (a run's is
    :attr:`radar.rundir.RunDir.config_path`); return the path."""
    target = Path(path)
    atomic_write_text(target, dump_config(config))
    return target


def shipped_config(name: str) -> Path:
    """Path of a YAML config shipped with RADAR (``configs/NAME.yaml`` in the repo)."""
    from importlib.resources import files

    path = Path(str(files("radar_configs") / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"no shipped config named {name!r}")
    return path
