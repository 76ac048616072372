"""pyproject.toml lists every package folder, so a wheel install misses no module."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _folders(top: str, package: str) -> set[str]:
    base = ROOT / top
    found = set()
    for init in base.rglob("__init__.py"):
        relative = init.parent.relative_to(base)
        if "tests" in relative.parts or "__pycache__" in relative.parts:
            continue
        found.add(".".join((package, *relative.parts)))
    return found


def test_every_package_folder_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    expected = _folders("radar", "radar") | _folders("plugins", "radar_plugins")
    expected |= _folders("configs", "radar_configs")
    assert expected - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - expected == set(), "these listed packages have no folder"


def test_every_plugin_folder_has_an_entry_point():
    entry_points = _pyproject()["project"]["entry-points"]["radar"]
    plugins = {path.parent.name for path in (ROOT / "plugins").glob("*/__init__.py")}
    assert plugins == set(entry_points)
    assert all(target == f"radar_plugins.{name}" for name, target in entry_points.items())
