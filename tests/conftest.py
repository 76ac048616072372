"""Shared fixtures: a fresh plugin manager per test, and installable fake plugin packages."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from radar import plugins

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    """Every test starts (and ends) with no process-wide plugin manager."""
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


def install_dist(site: Path, dist_name: str, entry_points: dict[str, str],
                 modules: dict[str, str], version: str = "0.1.0") -> Path:
    """Write modules and a ``.dist-info`` folder into ``site`` (on sys.path), exactly what
    pip would leave, so plugins load through the real entry-point mechanism."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[radar]\n{lines}\n")
    for module in modules:
        sys.modules.pop(module, None)
    return site


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """Install a throwaway distribution with ``radar`` entry points onto sys.path.

    ``fake_dist("radar-fake", {"fake": "fake_radar_plugin"}, {"fake_radar_plugin": SRC})``
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(dist_name: str, entry_points: dict[str, str], modules: dict[str, str],
                version: str = "0.1.0") -> Path:
        return install_dist(site, dist_name, entry_points, modules, version)

    yield install
    for path in site.glob("*.py"):
        sys.modules.pop(path.stem, None)


def shared_data(relative: str) -> Path:
    """A path under ../shared/data, skipping the test when it is absent (a user's clone)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} not available (only the developers' checkout has ../shared)")
    return path


# A LogBERT small enough to train in seconds: the settings the end-to-end tests share.
TINY_LOGBERT = ["model.hidden_size=32", "model.num_hidden_layers=1",
                "model.num_attention_heads=2", "model.intermediate_size=64",
                "training.total_steps=6", "training.log_interval=2", "training.save_interval=3",
                "training.batch_size=32", "detection.batch_size=64", "data.max_seq_length=64"]


def tiny_demo_run(root: Path, *settings: str) -> None:
    """`radar run --detector logbert` with configs/demo.yaml and TINY_LOGBERT (plus
    ``settings``) on ROOT/data and its labels.csv, into ROOT/run (cache ROOT/cache)."""
    from click.testing import CliRunner

    from radar.cli import cli
    from radar.config import shipped_config

    args = ["run", "--detector", "logbert", "--config", str(shipped_config("demo")),
            "--data", str(root / "data"), "--labels", str(root / "data" / "labels.csv"),
            "--set", f"output_dir={root / 'run'}", "--set", f"data.cache_dir={root / 'cache'}"]
    for item in [*TINY_LOGBERT, *settings]:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
