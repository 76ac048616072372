"""The public API (``from radar import ...``) and the import structure of radar/.

``radar.__all__`` is what a plugin, a notebook or an embedding service imports; scoring
sessions held in memory with a trained run is part of it and must give the records
``radar detect`` writes. The layering checks keep the structure issue #23 set up: no
import circle anywhere in radar/ (lazy imports inside functions included), the report
layer imported only by reports and commands, the plugin test kit by nobody in the core.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import radar
from radar.cli import cli
from radar.data.synth import generate
from tests.conftest import tiny_demo_run

RADAR = Path(radar.__file__).parent


def test_every_public_name_resolves_and_nothing_else_does():
    for name in radar.__all__:
        assert getattr(radar, name) is not None, name
    assert set(radar.__all__) <= set(dir(radar))
    with pytest.raises(AttributeError, match="no attribute 'detect'"):
        radar.detect  # noqa: B018 - the access is the test


def test_import_radar_is_cheap():
    """``import radar`` (the CLI's first step) loads no torch until a name needs it."""
    code = ("import sys, radar; print(int('torch' in sys.modules)); radar.RunScorer; "
            "print(int('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["0", "1"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    generate(root / "data", days=2, sessions=40, anomaly_rate=0.1, seed=11)
    tiny_demo_run(root)
    day = min((root / "data").glob("preprocessed_logs_*.json"))
    detected = root / "detected.json"
    # drift handling judges whole days, which in-memory sessions are not: off for both
    result = CliRunner().invoke(cli, ["detect", "--checkpoint", str(root / "run" / "best_model.pt"),
                                      "--input", str(day), "--output", str(detected),
                                      "--drift-share", "0"])
    assert result.exit_code == 0, result.output
    return root, json.loads(day.read_text()), json.loads(detected.read_text())


def test_scoring_sessions_in_memory_gives_the_records_radar_detect_writes(demo_run):
    root, sessions, detected = demo_run
    scorer = radar.RunScorer.from_run(root / "run", torch.device("cpu"))
    records = scorer.score_sessions(sessions)            # plain dicts, as a notebook has them
    assert len(records) == len(detected) == len(sessions)
    for ours, theirs, session in zip(records, detected, sessions):
        assert ours["file"] is None                      # it came from no file
        assert ours["session_id"] == theirs["session_id"] == session["session_id"]
        assert ours["anomaly_score"] == pytest.approx(theirs["anomaly_score"], rel=1e-5)
        assert ours["is_anomaly"] == theirs["is_anomaly"]
        assert ours["service_name"] == theirs["service_name"]
        assert [p["event_id"] for p in ours["top_positions"]] == \
               [p["event_id"] for p in theirs["top_positions"]]


def test_in_memory_sessions_take_defaults_and_name_what_is_missing(demo_run):
    root, sessions, _ = demo_run
    scorer = radar.RunScorer.from_run(root / "run", torch.device("cpu"))
    (record,) = scorer.score_sessions([{"event_sequence": sessions[0]["event_sequence"]}])
    assert (record["session_id"], record["service_name"]) == (None, "unknown")   # echoed
    assert scorer.score_groups([[], []]) == [[], []]
    with pytest.raises(ValueError, match="session 1 has no event_sequence"):
        scorer.score_sessions([{"event_sequence": [1]}, {"service_name": "api"}])


# -- the import structure of radar/ ---------------------------------------------------
def _module_name(path: Path) -> str:
    parts = list(path.relative_to(RADAR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the radar modules it imports anywhere (functions included; blocks under
    ``if TYPE_CHECKING`` left out, since they never run)."""
    modules = {_module_name(path): path for path in RADAR.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(block.test)
                       for node in ast.walk(block)}
        found = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_no_import_circle_in_radar():
    assert _circles(_import_graph()) == []


def test_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_reports_and_commands_import_the_report_layer():
    graph = _import_graph()
    upward = {name: sorted(m for m in imported if m.startswith("radar.report"))
              for name, imported in graph.items()
              if not name.startswith(("radar.report", "radar.commands"))}
    assert {name: mods for name, mods in upward.items() if mods} == {}


def test_the_core_never_imports_the_plugin_test_kit():
    graph = _import_graph()
    users = sorted(name for name, imported in graph.items()
                   if not name.startswith("radar.testing")
                   and any(m.startswith("radar.testing") for m in imported))
    assert users == []
