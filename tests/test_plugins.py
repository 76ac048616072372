"""The plugin boundary: entry-point loading, allow-lists, failures, look-ups, `radar plugins`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from radar.errors import UnknownNameError
from radar.plugins import get_detector_class, make_plugin_manager

FAKE_PLUGIN = '''
from radar.hookspecs import hookimpl
from radar.detector import Detector, SessionScores

class FakeDetector(Detector):
    name = "fake"
    description = "scores sessions by length"

    def build_model(self, vocab, window):
        import torch
        return torch.nn.Linear(1, 1)

    def training_loss(self, model, batch):
        return model.weight.sum() * 0

    def score_sessions(self, model, batch):
        return SessionScores(score=batch.lengths.float())

@hookimpl
def register_detectors(register):
    register(FakeDetector)
'''

BROKEN_PLUGIN = "raise ImportError('missing dependency: frobnicate')\n"


def test_fake_detector_registers_through_entry_point(fake_dist):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin"}, {"fake_radar_plugin": FAKE_PLUGIN})
    pm = make_plugin_manager()
    detectors = pm.detectors()
    assert "fake" in detectors
    assert detectors["fake"].description == "scores sessions by length"
    info = {i.name: i for i in pm.plugin_infos()}["fake"]
    assert info.version == "0.1.0"
    assert info.detectors == ["fake"]
    assert info.hooks == ["register_detectors"]


def test_broken_plugin_is_reported_and_others_still_load(fake_dist):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin", "broken": "broken_radar_plugin"},
              {"fake_radar_plugin": FAKE_PLUGIN, "broken_radar_plugin": BROKEN_PLUGIN})
    pm = make_plugin_manager()
    assert "fake" in pm.detectors()
    assert [f.name for f in pm.failures] == ["broken"]
    assert "frobnicate" in pm.failures[0].error


def test_a_plugin_that_exits_on_import_is_a_failing_plugin(fake_dist, monkeypatch):
    """sys.exit() in a plugin module is reported like an ImportError, not the end of radar."""
    exiting = "import sys\nsys.exit(0)\n"
    fake_dist("radar-fake", {"fake": "fake_radar_plugin", "quits": "quitting_radar_plugin"},
              {"fake_radar_plugin": FAKE_PLUGIN, "quitting_radar_plugin": exiting,
               "local_quitting_plugin": exiting})
    monkeypatch.setenv("RADAR_PLUGINS", "local_quitting_plugin")
    pm = make_plugin_manager()
    assert "fake" in pm.detectors()
    assert sorted(f.name for f in pm.failures) == ["local_quitting_plugin", "quits"]
    assert all(f.error.startswith("SystemExit") for f in pm.failures)
    from radar.cli import cli

    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 1
    assert "plugin 'quits' failed to load" in result.output


def test_allow_list_restricts_entry_points(fake_dist, monkeypatch):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin"}, {"fake_radar_plugin": FAKE_PLUGIN})
    monkeypatch.setenv("RADAR_LOAD_PLUGINS", "")
    assert "fake" not in make_plugin_manager().detectors()
    monkeypatch.setenv("RADAR_LOAD_PLUGINS", "fake")
    assert "fake" in make_plugin_manager().detectors()


def test_local_module_through_environment(fake_dist, monkeypatch):
    site = fake_dist("radar-other", {}, {"local_radar_plugin": FAKE_PLUGIN})
    assert site.is_dir()
    monkeypatch.setenv("RADAR_LOAD_PLUGINS", "")
    monkeypatch.setenv("RADAR_PLUGINS", "local_radar_plugin")
    pm = make_plugin_manager()
    assert "fake" in pm.detectors()


def test_unknown_detector_lists_available(fake_dist):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin"}, {"fake_radar_plugin": FAKE_PLUGIN})
    with pytest.raises(UnknownNameError) as info:
        get_detector_class("fakex", make_plugin_manager())
    assert "unknown detector 'fakex'; available:" in str(info.value)
    assert "fake" in str(info.value).split("available:")[1]


def test_duplicate_detector_names_are_an_error(fake_dist):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin", "fake2": "fake_radar_plugin2"},
              {"fake_radar_plugin": FAKE_PLUGIN, "fake_radar_plugin2": FAKE_PLUGIN})
    pm = make_plugin_manager()
    with pytest.raises(Exception, match="two plugins register detector 'fake'"):
        pm.detectors()


def test_plugins_command_lists_plugins_and_failures(fake_dist):
    fake_dist("radar-fake", {"fake": "fake_radar_plugin", "broken": "broken_radar_plugin"},
              {"fake_radar_plugin": FAKE_PLUGIN, "broken_radar_plugin": BROKEN_PLUGIN})
    from radar.cli import cli

    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 1          # a failed plugin makes the listing non-zero
    payload = json.loads(result.output)
    names = {p["name"]: p for p in payload["plugins"]}
    assert names["fake"]["detectors"] == ["fake"]
    assert payload["failures"][0]["name"] == "broken"

    table = CliRunner().invoke(cli, ["plugins"])
    assert "fake" in table.output
    assert "plugin 'broken' failed to load" in table.output


def test_plugin_option_loads_a_local_module(fake_dist, monkeypatch):
    fake_dist("radar-other", {}, {"cli_radar_plugin": FAKE_PLUGIN})
    monkeypatch.setenv("RADAR_LOAD_PLUGINS", "")
    from radar.cli import cli

    result = CliRunner().invoke(cli, ["--plugin", "cli_radar_plugin", "plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert "cli_radar_plugin" in {p["name"] for p in json.loads(result.output)["plugins"]}
