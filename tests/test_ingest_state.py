"""The ingest template state is plain data: round trips keep ids, old jsonpickle files never run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from radar.cli import cli
from radar.errors import RadarError
from radar.ingest.formats import DEFAULT_MASKING
from radar.ingest.templates import TemplateStore, load_state, migrate_state

pytest.importorskip("drain3")

SETTINGS = {"sim_th": 0.5, "depth": 4, "masking": [list(pair) for pair in DEFAULT_MASKING]}
VERBS = ["Receiving", "Sending", "Deleting", "Verifying", "Opening", "Closing"]


def messages(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        verb, noun = rnd.choice(VERBS), rnd.choice(["block", "file", "lease", "packet"])
        tail = " ".join(rnd.choice(["ok", "late", "from", "to", "node", "x", "y"])
                        for _ in range(rnd.randrange(1, 5)))
        out.append(f"{verb} {noun} blk_{rnd.randrange(10**6)} {tail} {rnd.randrange(99)}")
    return out


def hdfs_log(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"081109 2036{i % 60:02d} 1 INFO dfs.X: {line}\n"
                            for i, line in enumerate(lines)))
    return path


def test_save_and_load_keep_ids_and_later_matches(tmp_path):
    first, later = messages(400, 1), messages(400, 2)
    continuous = TemplateStore(SETTINGS)
    ids_before = [continuous.event_id(m) for m in first]
    ids_later = [continuous.event_id(m) for m in later]
    store = TemplateStore(SETTINGS)
    assert [store.event_id(m) for m in first] == ids_before
    store.save(tmp_path / "state.json")
    reloaded = load_state(tmp_path / "state.json")
    assert reloaded.templates() == store.templates() and reloaded.n_loaded == store.n_templates
    assert [reloaded.event_id(m) for m in later] == ids_later
    assert reloaded.templates() == continuous.templates()
    text = (tmp_path / "state.json").read_text()
    assert "py/" not in text and json.loads(text)["version"] == 2


def os_system_state(marker: Path) -> dict:
    reduce = {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": [f"touch {marker}"]}]}
    return {"format": "radar-ingest-drain-state", "version": 1, "settings": SETTINGS,
            "drain": json.dumps(reduce)}


def test_a_jsonpickle_state_never_runs_and_names_the_migration(tmp_path):
    marker, out = tmp_path / "pwned", tmp_path / "out"
    out.mkdir()
    (out / "drain_state.json").write_text(json.dumps(os_system_state(marker)))
    log = hdfs_log(tmp_path / "hdfs.log", messages(20, 0))
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(log), "--preset", "hdfs", "--out", str(out)])
    assert result.exit_code == 1 and not marker.exists()
    assert "--migrate-state" in result.stderr and "jsonpickle" in result.stderr
    result = runner.invoke(cli, ["ingest", "--migrate-state", "--out", str(out)])
    assert result.exit_code == 1 and not marker.exists(), result.output
    assert "cannot migrate" in result.stderr


def test_migrating_a_real_jsonpickle_state_keeps_ids_and_matching(tmp_path):
    jsonpickle = pytest.importorskip("jsonpickle")
    first, later = messages(300, 3), messages(300, 4)
    store = TemplateStore(SETTINGS)
    ids = [store.event_id(m) for m in first]
    old = {"format": "radar-ingest-drain-state", "version": 1, "settings": SETTINGS,
           "drain": jsonpickle.dumps(store.drain, keys=True)}     # what drain3 wrote
    path = tmp_path / "drain_state.json"
    path.write_text(json.dumps(old))
    with pytest.raises(RadarError, match="--migrate-state"):
        load_state(path)
    migrated = migrate_state(path)
    assert migrated.templates() == store.templates()
    assert [migrated.event_id(m) for m in later] == [store.event_id(m) for m in later]
    assert (tmp_path / "drain_state.json.v1").exists()
    reloaded = load_state(path)
    assert reloaded.n_templates == max(ids) and reloaded.drain.clusters_counter == max(ids)


@pytest.mark.parametrize("damage", [
    lambda s: s.update(tree=[[999], {}]),                      # an id no cluster has
    lambda s: s.update(clusters=[[1, "not a list", 1]]),
    lambda s: s["settings"].update(depth=10**6),
    lambda s: s["settings"].update(masking=[["(unclosed", "X"]]),
    lambda s: s.update(clusters_counter=0),
    lambda s: s["clusters"][0][1].pop(),      # a template shorter than its place in the tree
])
def test_a_damaged_plain_state_is_a_clear_error(tmp_path, damage):
    store = TemplateStore(SETTINGS)
    for message in messages(30, 5):
        store.event_id(message)
    state = json.loads(json.dumps(store.to_state()))
    damage(state)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(RadarError, match=str(path)):
        load_state(path)
