"""Template mining with Drain3: event ids that stay the same from one ingest run to the next.

An event id is a Drain cluster id (1, 2, ...). Drain may rewrite a cluster's template
text as it generalises, but never its id, so a state file saved after one run and
loaded by the next gives yesterday's templates today's ids. The state file is JSON
holding the miner settings and drain3's own jsonpickle snapshot; loading jsonpickle
can build arbitrary objects, so only load state files you wrote yourself.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.ingest.formats import DEFAULT_MASKING

STATE_FORMAT, STATE_VERSION = "radar-ingest-drain-state", 1
_CACHE_LIMIT = 200_000      # masked lines remembered per run (a dict, cleared when full)


def require_drain3():
    """Import drain3, or say how to install it."""
    try:
        import drain3
    except ImportError:
        raise RadarError("radar ingest needs the ingest extra: pip install 'radar-logs[ingest]'"
                         ) from None
    return drain3


class TemplateStore:
    """A Drain3 TemplateMiner plus its settings, loaded from and saved to one state file."""

    def __init__(self, settings: dict, state: bytes | None = None):
        require_drain3()
        from drain3 import TemplateMiner
        from drain3.masking import MaskingInstruction
        from drain3.memory_buffer_persistence import MemoryBufferPersistence
        from drain3.template_miner_config import TemplateMinerConfig

        self.settings = settings
        config = TemplateMinerConfig()
        config.drain_sim_th, config.drain_depth = settings["sim_th"], settings["depth"]
        config.masking_instructions = [MaskingInstruction(pattern, name)
                                       for pattern, name in settings["masking"]]
        config.snapshot_compress_state = False
        self._persistence = MemoryBufferPersistence()
        self._persistence.state = state
        self._miner = TemplateMiner(self._persistence, config)    # loads ``state``
        self._miner.persistence_handler = None     # no snapshot on every new template
        # drain3's LogMasker, without its per-instruction call overhead (a third of it)
        self._masks = [(instruction.regex.sub, f"<{instruction.mask_with}>")
                       for instruction in config.masking_instructions]
        self._add = self._miner.drain.add_log_message
        self._known: dict[str, int] = {}
        self.n_loaded = len(self._miner.drain.id_to_cluster)

    @classmethod
    def open(cls, state_path: Path, *, sim_th: float | None, depth: int | None,
             default_sim_th: float, default_depth: int) -> TemplateStore:
        """The store saved at ``state_path``, or a new one when there is none yet.

        A saved state keeps its own settings; an explicit ``sim_th``/``depth`` that
        differs from them is an error, since it would not mine the same templates.
        """
        if not state_path.exists():
            return cls({"sim_th": default_sim_th if sim_th is None else sim_th,
                        "depth": default_depth if depth is None else depth,
                        "masking": [list(pair) for pair in DEFAULT_MASKING]})
        saved = _read_state(state_path)
        for name, given in (("sim_th", sim_th), ("depth", depth)):
            if given is not None and given != saved["settings"][name]:
                raise RadarError(
                    f"{state_path} was mined with {name.replace('_', '-')} "
                    f"{saved['settings'][name]}, not {given}; drop --{name.replace('_', '-')} "
                    "to keep its event ids, or pass a new --state to start afresh")
        try:
            return cls(saved["settings"], saved["drain"].encode("utf-8"))
        except (ValueError, TypeError, AttributeError, KeyError, ImportError) as exc:
            raise RadarError(f"{state_path}: the template snapshot is damaged ({exc}); "
                             "restore it, or pass a new --state to start afresh") from None

    def event_id(self, content: str) -> int:
        """The event id of one message (mining a new template when none matches)."""
        masked = content
        for substitute, mask in self._masks:
            masked = substitute(mask, masked)
        known = self._known.get(masked)
        if known is None:
            # The same masked text always lands in the same cluster: it matched that
            # cluster's template exactly, and templates only ever generalise.
            cluster, _change = self._add(masked)
            known = cluster.cluster_id
            if len(self._known) >= _CACHE_LIMIT:
                self._known.clear()
            self._known[masked] = known
        return known

    @property
    def n_templates(self) -> int:
        return len(self._miner.drain.id_to_cluster)

    def templates(self) -> list[tuple[int, str]]:
        """(event id, current template text) for every template, by id."""
        clusters = self._miner.drain.id_to_cluster
        return sorted((cid, cluster.get_template()) for cid, cluster in clusters.items())

    def save(self, state_path: Path) -> None:
        """Write the state atomically (a crash leaves the previous state in place)."""
        self._miner.persistence_handler = self._persistence
        try:
            self._miner.save_state("radar ingest")
        finally:
            self._miner.persistence_handler = None
        state = {"format": STATE_FORMAT, "version": STATE_VERSION, "settings": self.settings,
                 "drain": self._persistence.state.decode("utf-8")}
        atomic_write_text(state_path, json.dumps(state))

    def write_table(self, path: Path) -> None:
        """``templates.tsv``: ``event_id<TAB>template``, one line per template."""
        rows = ["event_id\ttemplate"] + [f"{cid}\t{text}" for cid, text in self.templates()]
        atomic_write_text(path, "\n".join(rows) + "\n")


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT:
            raise ValueError("not a radar ingest state file")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"state version {state.get('version')}, need {STATE_VERSION}")
        settings = state["settings"]
        if not (isinstance(settings["sim_th"], (int, float)) and isinstance(settings["depth"], int)
                and isinstance(settings["masking"], list) and isinstance(state["drain"], str)):
            raise TypeError("settings or snapshot of the wrong type")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RadarError(f"{path}: cannot read the template state ({exc}); pass the "
                         "drain_state.json an earlier `radar ingest` wrote, or a new --state "
                         "path to start afresh (event ids will then differ from older days)"
                         ) from None
    return state


def parsing_accuracy(predicted: Sequence, truth: Sequence) -> float:
    """The standard log-parsing (grouping) accuracy: the share of lines whose predicted
    group holds exactly the same lines as their ground-truth group."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} lines")
    if not truth:
        return 0.0
    by_predicted, by_truth = _groups(predicted), _groups(truth)
    correct = sum(len(lines) for label, lines in by_truth.items()
                  if by_predicted[predicted[next(iter(lines))]] == lines)
    return correct / len(truth)


def _groups(labels: Iterable) -> dict:
    groups: dict = collections.defaultdict(set)
    for line, label in enumerate(labels):
        groups[label].add(line)
    return groups
