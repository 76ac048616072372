"""The plugin manager: entry-point loading, allow-lists, and name registries.

Built-in detectors and third-party packages both load from the ``radar``
entry-point group. Local modules load from ``RADAR_PLUGINS`` (comma-separated
module paths) or ``--plugin module.path``. ``RADAR_LOAD_PLUGINS`` (comma-separated
entry-point names) restricts which entry points load; set it empty to load none.
A plugin that fails to import is recorded by name and the rest still work.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from radar import hookspecs
from radar.errors import ConfigError, RadarError, UnknownNameError

if TYPE_CHECKING:
    from radar.config import RadarConfig
    from radar.detector import Detector

ENTRY_POINT_GROUP = "radar"


@dataclass
class PluginFailure:
    name: str
    error: str


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str]
    detectors: list[str] = field(default_factory=list)
    scorers: list[str] = field(default_factory=list)


def _split_env(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


class RadarPluginManager(pluggy.PluginManager):
    """A pluggy manager that also remembers failures and plugin versions."""

    def __init__(self) -> None:
        super().__init__("radar")
        self.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.versions: dict[str, str | None] = {}

    def load_entry_points(self) -> None:
        allowed = _split_env("RADAR_LOAD_PLUGINS")
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.get_plugin(ep.name) is not None:
                continue
            module = self._import(ep.name, ep.load)
            if module is None:
                continue
            self.register(module, name=ep.name)
            self.versions[ep.name] = ep.dist.version if ep.dist else None

    def load_module(self, path: str) -> None:
        """Register a local module (``package.module``) as a plugin."""
        if self.get_plugin(path) is not None:
            return
        module = self._import(path, lambda: importlib.import_module(path))
        if module is None:
            return
        self.register(module, name=path)
        self.versions[path] = getattr(module, "__version__", None)

    def _import(self, name: str, load: Callable[[], Any]) -> Any:
        """``load()``'s module, or None with the failure recorded by name. A module that
        calls ``sys.exit()`` on import is a failing plugin too, not the end of the
        command (KeyboardInterrupt still stops it)."""
        try:
            return load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported by name
            self.failures.append(PluginFailure(name, f"{type(exc).__name__}: {exc}"))
            return None

    def _collect(self, hook: str) -> dict[str, type]:
        found: dict[str, type] = {}
        owners: dict[str, str] = {}
        for impl in getattr(self.hook, hook).get_hookimpls():
            registered: list[type] = []
            # Called per implementation (to name the plugin behind each class) and with
            # keywords, as pluggy calls hooks: an implementation may take fewer arguments.
            impl.function(**{arg: registered.append for arg in impl.argnames
                             if arg == "register"})
            for cls in registered:
                name = getattr(cls, "name", None)
                if not name:
                    raise RadarError(f"plugin {impl.plugin_name!r} registered {cls!r} "
                                     "without a 'name' class attribute")
                if name in found and found[name] is not cls:
                    raise RadarError(f"two plugins register {hook[9:-1]} {name!r}: "
                                     f"{owners[name]!r} and {impl.plugin_name!r}; "
                                     "uninstall one or restrict RADAR_LOAD_PLUGINS")
                found[name], owners[name] = cls, impl.plugin_name
        return found

    def detectors(self) -> dict[str, type]:
        return self._collect("register_detectors")

    def scorers(self) -> dict[str, type]:
        return self._collect("register_scorers")

    def converters(self) -> dict[str, type]:
        return self._collect("register_converters")

    def plugin_infos(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in sorted(self.list_name_plugin(), key=lambda item: item[0]):
            hooks = sorted(impl.name for impl in self.get_hookcallers(plugin) or [])
            info = PluginInfo(name=name, version=self.versions.get(name), hooks=hooks)
            for hook, target in (("register_detectors", info.detectors),
                                 ("register_scorers", info.scorers)):
                impl = getattr(plugin, hook, None)
                if impl is not None:
                    collected: list[type] = []
                    impl(collected.append)
                    target.extend(cls.name for cls in collected)
            infos.append(info)
        return infos


def make_plugin_manager(extra_modules: list[str] | tuple[str, ...] = ()) -> RadarPluginManager:
    """Build a fresh manager with entry points, ``RADAR_PLUGINS`` and ``extra_modules`` loaded."""
    pm = RadarPluginManager()
    pm.load_entry_points()
    for path in [*(_split_env("RADAR_PLUGINS") or []), *extra_modules]:
        pm.load_module(path)
    return pm


_default: RadarPluginManager | None = None


def get_plugin_manager() -> RadarPluginManager:
    """The process-wide manager, created on first use."""
    global _default
    if _default is None:
        _default = make_plugin_manager()
    return _default


def add_plugin_modules(paths: list[str] | tuple[str, ...]) -> None:
    """Load extra local plugin modules into the process-wide manager (``--plugin``)."""
    pm = get_plugin_manager()
    for path in paths:
        pm.load_module(path)


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests use this for a fresh one)."""
    global _default
    _default = None


def _lookup(kind: str, registry: dict[str, Any], name: str) -> Any:
    try:
        return registry[name]
    except KeyError:
        raise UnknownNameError(kind, name, list(registry)) from None


def get_detector_class(name: str, pm: RadarPluginManager | None = None) -> type:
    """The registered detector class called ``name``, or an error listing the available ones."""
    return _lookup("detector", (pm or get_plugin_manager()).detectors(), name)


def get_converter_class(name: str, pm: RadarPluginManager | None = None) -> type:
    """The registered input format (``radar convert NAME``) called ``name``."""
    return _lookup("input format", (pm or get_plugin_manager()).converters(), name)


def get_combiner_class(name: str, pm: RadarPluginManager | None = None) -> type:
    """The registered ensemble combiner called ``name`` (``ensemble.method``)."""
    return _lookup("combiner", _scorers_of_kind("combiner", pm), name)


def get_severity_class(name: str, pm: RadarPluginManager | None = None) -> type:
    """The registered severity scorer called ``name`` (``severity.scorer``)."""
    return _lookup("severity scorer", _scorers_of_kind("severity", pm), name)


def _scorers_of_kind(kind: str, pm: RadarPluginManager | None) -> dict[str, type]:
    """Registered scorers whose base class declares ``scorer_kind = kind``
    (:class:`radar.Combiner`: "combiner"; :class:`radar.SeverityScorer`: "severity"), read
    from the class so the plugin manager needs no import of the scoring layer."""
    scorers = (pm or get_plugin_manager()).scorers()
    return {k: v for k, v in scorers.items() if getattr(v, "scorer_kind", None) == kind}


Register = Callable[[type], None]


def make_detector(name: str, config: RadarConfig) -> Detector:
    """Instantiate detector ``name`` with the config's model section and run options."""
    from radar.config import build_section

    cls = get_detector_class(name)
    section, key = config.model_section(name)
    try:
        detector = cls(build_section(cls.config_class, section, key))
    except ConfigError as exc:
        if key != "model" or not config.model:
            raise
        raise ConfigError(f"{exc} (the config's `model:` section belongs to the first "
                          f"detector, {name} here; put another detector's keys under "
                          "models.NAME, e.g. models.logbert)") from None
    return detector
