"""Every hook is documented: docs/plugins.md has a section per hookspec, names no hook
that does not exist, every hookspec's docstring states its arguments and return, and each
hook section's worked example runs (it registers with a real plugin manager and does what
the section says)."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import numpy as np
import pytest

from radar import hookspecs
from radar.plugins import RadarPluginManager

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
LINES_AND_DOTALL = re.MULTILINE | re.DOTALL


def hook_specs() -> dict[str, object]:
    """The hook specifications in radar/hookspecs.py (pluggy marks them ``radar_spec``)."""
    return {name: value for name, value in vars(hookspecs).items()
            if callable(value) and hasattr(value, "radar_spec")}


def hook_sections(text: str) -> list[str]:
    """The ``### name`` headings inside the doc's ``## Hooks`` section, in order."""
    match = re.search(r"^## Hooks\n(.*?)(?=^## )", text + "\n## end\n", LINES_AND_DOTALL)
    assert match, f"{DOC} has no '## Hooks' section"
    return re.findall(r"^### `?(\w+)`?\s*$", match.group(1), re.MULTILINE)


def section_text(text: str, hook: str) -> str:
    """The body of ``### hook`` up to the next heading of level 2 or 3."""
    match = re.search(rf"^### `?{hook}`?\s*$(.*?)(?=^##)", text + "\n## end\n", LINES_AND_DOTALL)
    assert match, f"no section for {hook}"
    return match.group(1)


def worked_example(hook: str) -> types.ModuleType:
    """The section's example: its last ```python block, loaded as a plugin module."""
    blocks = re.findall(r"```python\n(.*?)```", section_text(DOC.read_text(), hook), re.DOTALL)
    assert blocks, f"the {hook} section has no ```python worked example"
    module = types.ModuleType(f"docs_example_{hook}")
    code = compile(blocks[-1], f"docs/plugins.md ({hook} example)", "exec")
    exec(code, module.__dict__)  # noqa: S102 - running the doc's own example is the point
    return module


def example_manager(hook: str) -> RadarPluginManager:
    """A manager with nothing but the example: pluggy checks its hookimpls against the spec."""
    pm = RadarPluginManager()
    pm.register(worked_example(hook), name=f"docs-{hook}")
    assert pm.get_hookcallers(pm.get_plugin(f"docs-{hook}")), f"{hook} example implements no hook"
    return pm


SPECS = hook_specs()


def test_the_hookspecs_module_declares_hooks():
    assert "register_detectors" in SPECS, "radar_spec marker not found: did pluggy change?"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_has_a_section_in_docs_plugins_md(name):
    assert name in hook_sections(DOC.read_text()), (
        f"hook {name!r} has no '### {name}' section under '## Hooks' in {DOC}: document "
        "its arguments, what it must do, its return contract and a worked example")


def test_the_doc_has_no_section_or_mention_of_a_hook_that_does_not_exist():
    text = DOC.read_text()
    sections = hook_sections(text)
    assert len(sections) == len(set(sections)), f"a hook has two sections: {sections}"
    unknown = sorted(set(sections) - set(SPECS))
    assert not unknown, f"{DOC} documents hooks radar/hookspecs.py lacks: {unknown}"
    mentioned = set(re.findall(r"\bregister_[a-z_]+\b", text))
    stale = sorted(mentioned - set(SPECS))
    assert not stale, f"{DOC} mentions hooks radar/hookspecs.py lacks: {stale}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hookspec_docstring_has_a_param_per_argument_and_a_return(name):
    spec = SPECS[name]
    doc = inspect.getdoc(spec) or ""
    assert doc, f"hookspec {name} has no docstring"
    for argument in inspect.signature(spec).parameters:
        assert f":param {argument}:" in doc, f"hookspec {name}: no ':param {argument}:'"
    documented = set(re.findall(r":param (\w+):", doc))
    extra = documented - set(inspect.signature(spec).parameters)
    assert not extra, f"hookspec {name} documents arguments it does not take: {sorted(extra)}"
    assert ":returns:" in doc, f"hookspec {name}: no ':returns:' (say what the caller uses)"


def test_the_check_catches_a_missing_section():
    """The parser finds sections, so a deleted one would fail the tests above."""
    text = DOC.read_text()
    first = next(iter(sorted(SPECS)))
    without = re.sub(rf"^### `?{first}`?\s*$", "### something_else", text, flags=re.MULTILINE)
    assert first in hook_sections(text) and first not in hook_sections(without)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_worked_example_registers_as_a_plugin(name):
    pm = example_manager(name)
    implemented = {impl.name for impl in pm.get_hookcallers(pm.get_plugin(f"docs-{name}"))}
    assert name in implemented


def test_register_detectors_example_trains_and_scores():
    import torch

    from radar.data.vocab import EventVocab
    from radar.detector import SessionBatch

    (cls,) = example_manager("register_detectors").detectors().values()
    detector = cls()
    model = detector.build_model(EventVocab([100, 101, 102]), 10)
    batch = SessionBatch.from_lists([[5, 6, 6, 5], [5, 7]])
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(20):
        loss = detector.training_loss(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    scores = detector.score_sessions(model, SessionBatch.from_lists([[5, 5], [5, 7], [5, 4]]))
    assert scores.score.shape == (3,)
    assert scores.score[0] < scores.score[1] < scores.score[2]     # common < rare < unseen


def test_register_scorers_example_combines_and_grades():
    from radar.plugins import get_combiner_class, get_severity_class

    pm = example_manager("register_scorers")
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(500, 3))
    combiner = get_combiner_class("median", pm)().fit(normal, ["a", "b", "c"])
    combined = combiner.combine(np.array([[0.0, 0.0, 0.0], [9.0, 0.0, 0.0], [9.0, 9.0, 0.0]]))
    assert combined[0] < combined[2] and combined[1] < combined[2]  # one alarm is outvoted
    severity = get_severity_class("margin_only", pm)()
    result = severity.assess(np.array([0.5, 1.5, 9.0]), 1.0, ["svc"], np.zeros(3, int),
                             np.zeros(3, bool), np.zeros(3, bool))
    assert result.names() == ["NORMAL", "LOW", "CRITICAL"]
    assert result.reasons[0] == [] and result.reasons[2]


def test_register_commands_example_adds_a_working_command(tmp_path):
    import click
    from click.testing import CliRunner

    from radar.data.synth import generate

    @click.group()
    def cli():
        pass

    example_manager("register_commands").hook.register_commands(cli=cli)
    generate(tmp_path, days=1, sessions=40, anomaly_rate=0.2, seed=1)
    (day,) = tmp_path.glob("preprocessed_logs_*.json")
    result = CliRunner().invoke(cli, ["services", str(day)])
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert sum(int(count) for _, count, _ in rows) == 40
