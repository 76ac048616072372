"""The ``--state DIR`` of ``radar watch``: one checkpoint, written atomically, plain JSON.

``checkpoint.json`` holds everything a restart needs: where each followed file was
read to, the open sessions, the counters (next session number, next line number),
which template-state file is current, and the *outbox*: the scored records of the
last micro-batch, saved before any of them is written out. A checkpoint is taken
after every scored micro-batch (before its records leave) and every few seconds
otherwise, so after ``kill -9`` the watcher resumes from the last checkpoint: lines
after it are read again into the same open sessions, and the outbox is delivered
again, minus what the sinks already hold (:mod:`radar.watch.sink`). No record is lost
and none is written twice, whatever the wall clock did meanwhile.

Template states are ``templates-NNNNNN.json`` files written through
:mod:`radar.ingest.templates` (its own format), a new one before each checkpoint that
names it; older ones are removed once the checkpoint naming the new one is in place.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.ingest import STATE_NAME
from radar.ingest.templates import TemplateStore

CHECKPOINT_NAME = "checkpoint.json"
STATE_FORMAT, STATE_VERSION = "radar-watch-state", 1
_TEMPLATES = "templates-{:06d}.json"


def open_templates(path: Path, fmt) -> TemplateStore:
    """The template miner saved at ``path`` (ingest's API: the file format is its own)."""
    return TemplateStore.open(path, sim_th=None, depth=None, default_sim_th=fmt.sim_th,
                              default_depth=fmt.depth)


def run_template_state(run_dir: Path, given: Path | None) -> Path:
    """Where the run's ingest left its template state: ``given``, else the drain state in
    the data folder the run trained on (``data.preprocessed_dir`` of its config.yaml)."""
    from radar.watch.scoring import run_data_dir

    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise RadarError(f"--templates-state {path}: no such file; pass the "
                             f"{STATE_NAME} that `radar ingest` wrote for the training data")
        return path
    data_dir = run_data_dir(run_dir)
    path = None
    if data_dir:    # a relative data folder: from where `radar run` ran, else near the run
        tries = [Path(data_dir), Path(run_dir) / data_dir, Path(run_dir).parent / data_dir]
        path = next((p / STATE_NAME for p in tries if (p / STATE_NAME).is_file()),
                    tries[0] / STATE_NAME)
    if path is None or not path.is_file():
        where = f" (looked for {path})" if path else " (its config.yaml names no data folder)"
        raise RadarError(f"--run {run_dir}: cannot find the template state of its training "
                         f"data{where}; pass --templates-state PATH, the {STATE_NAME} "
                         "`radar ingest --out DIR` wrote for the data the run trained on")
    return path


class WatchState:
    """Reads and writes ``DIR/checkpoint.json`` and the template files beside it."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.path = self.dir / CHECKPOINT_NAME
        self.generation = 0

    def load(self) -> dict | None:
        """The last checkpoint, or None for a fresh folder."""
        if not self.path.exists():
            return None
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if state.get("format") != STATE_FORMAT or state.get("version") != STATE_VERSION:
                raise ValueError(f"not a radar watch checkpoint (version {STATE_VERSION})")
            self.generation = int(state["generation"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RadarError(f"{self.path}: cannot read the watch checkpoint ({exc}); move "
                             "the --state folder away to start afresh") from None
        return state

    def templates_path(self, generation: int | None = None) -> Path:
        return self.dir / _TEMPLATES.format(self.generation if generation is None
                                            else generation)

    def new(self, identity: dict) -> dict:
        """The first checkpoint's contents for a fresh folder."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RadarError(f"cannot create --state {self.dir} ({exc.strerror or exc}); pass "
                             "a writable folder") from None
        return {"format": STATE_FORMAT, "version": STATE_VERSION,
                "watch_id": uuid.uuid4().hex[:16], "identity": identity, "generation": 0}

    def save(self, state: dict, store: TemplateStore) -> None:
        """Templates first, then the checkpoint naming them, then old templates go."""
        self.generation += 1
        store.save(self.templates_path())
        state["generation"] = self.generation
        atomic_write_text(self.path, json.dumps(state, ensure_ascii=False))
        for old in self.dir.glob("templates-*.json"):
            if old.name != self.templates_path().name:
                try:
                    os.unlink(old)
                except FileNotFoundError:
                    pass


def check_identity(state: dict, identity: dict, directory: Path) -> None:
    """A checkpoint belongs to one run and one way of reading lines."""
    saved = state["identity"]
    for name, value in identity.items():
        if saved.get(name) != value:
            raise RadarError(f"--state {directory} was made with {name} {saved.get(name)!r}, "
                             f"not {value!r}; use the same options, or another --state folder")
