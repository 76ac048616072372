"""Template mining with Drain3: event ids that stay the same from one ingest run to the next.

An event id is a Drain cluster id (1, 2, ...). Drain may rewrite a cluster's template
text as it generalises, but never its id, so a state file saved after one run and
loaded by the next gives yesterday's templates today's ids.

The state file is plain JSON (:data:`STATE_VERSION` 2): the miner settings, every
cluster as ``[id, template tokens, size]``, the id counter and Drain's prefix tree as
nested ``[cluster ids, {token: child}]`` lists. Loading rebuilds a Drain from that data,
so nothing in the file can name code to run. Version 1 files embedded drain3's own
jsonpickle snapshot, which builds arbitrary objects (and so runs arbitrary code) when
decoded; they are refused, and ``radar ingest --migrate-state`` converts one by reading
only its cluster ids, templates and tree with :mod:`json`, never jsonpickle.
"""

from __future__ import annotations

import collections
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from radar.errors import RadarError
from radar.fsutil import atomic_write_text
from radar.ingest.formats import DEFAULT_MASKING, compile_regex

STATE_FORMAT, STATE_VERSION = "radar-ingest-drain-state", 2
JSONPICKLE_VERSION = 1          # the old layout: drain3's jsonpickle snapshot in "drain"
MAX_DEPTH = 64                  # Drain's parse-tree depth; the tree in a file may not exceed it
_PARAM = "<*>"                  # drain3's wildcard token (mask prefix + "*" + suffix)
_CACHE_LIMIT = 200_000      # masked lines remembered per run (a dict, cleared when full)


def require_drain3():
    """Import drain3, or say how to install it."""
    try:
        import drain3
    except ImportError:
        raise RadarError("radar ingest needs the ingest extra: pip install 'radar-logs[ingest]'"
                         ) from None
    return drain3


def _new_drain(settings: dict):
    """A Drain with drain3's TemplateMiner defaults and these settings."""
    require_drain3()
    from drain3.drain import Drain

    return Drain(sim_th=settings["sim_th"], depth=settings["depth"], max_children=100,
                 param_str=_PARAM, parametrize_numeric_tokens=True)


class TemplateStore:
    """A Drain3 miner plus its settings, loaded from and saved to one plain-JSON state file."""

    def __init__(self, settings: dict, drain=None):
        self.settings = settings
        self.drain = drain if drain is not None else _new_drain(settings)
        # drain3's LogMasker, without its per-instruction call overhead (a third of it)
        self._masks = [(compile_regex(pattern, "the template state's masking").sub,
                        f"<{name}>") for pattern, name in settings["masking"]]
        self._add = self.drain.add_log_message
        self._known: dict[str, int] = {}
        self.n_loaded = len(self.drain.id_to_cluster)

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
        store = load_state(state_path)
        for name, given in (("sim_th", sim_th), ("depth", depth)):
            if given is not None and given != store.settings[name]:
                raise RadarError(
                    f"{state_path} was mined with {name.replace('_', '-')} "
                    f"{store.settings[name]}, not {given}; drop --{name.replace('_', '-')} "
                    "to keep its event ids, or pass a new --state to start afresh")
        return store

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
        return len(self.drain.id_to_cluster)

    def templates(self) -> list[tuple[int, str]]:
        """(event id, current template text) for every template, by id."""
        clusters = self.drain.id_to_cluster
        return sorted((cid, cluster.get_template()) for cid, cluster in clusters.items())

    def to_state(self) -> dict:
        """The plain-data state (see the module docstring)."""
        clusters = [[cid, list(cluster.log_template_tokens), cluster.size]
                    for cid, cluster in sorted(self.drain.id_to_cluster.items())]
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "settings": self.settings,
                "clusters_counter": self.drain.clusters_counter, "clusters": clusters,
                "tree": _tree_to_data(self.drain.root_node)}

    def save(self, state_path: Path) -> None:
        """Write the state atomically (a crash leaves the previous state in place)."""
        atomic_write_text(state_path, json.dumps(self.to_state(), ensure_ascii=False))

    def write_table(self, path: Path) -> None:
        """``templates.tsv``: ``event_id<TAB>template``, one line per template."""
        rows = ["event_id\ttemplate"] + [f"{cid}\t{text}" for cid, text in self.templates()]
        atomic_write_text(path, "\n".join(rows) + "\n")


# ---------------------------------------------------------------- reading a state file

def _tree_to_data(node) -> list:
    return [list(node.cluster_ids),
            {token: _tree_to_data(child) for token, child in node.key_to_child_node.items()}]


def _tree_from_data(data: Any, lengths: dict[int, int], depth: int = 0,
                    length: int | None = None):
    """Drain's prefix tree from ``[cluster ids, {token: child}]``, checked as it goes.

    ``lengths`` maps each cluster id to its template's token count. The root's children
    are keyed by token count, and every cluster below one has that many tokens (Drain
    compares a message only with templates of its own length).
    """
    from drain3.drain import Node

    if depth > MAX_DEPTH + 1:
        raise ValueError("the prefix tree is deeper than any Drain depth")
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], list)
            and isinstance(data[1], dict)):
        raise TypeError("a prefix-tree node is not [cluster ids, {token: child}]")
    ids, children = data
    if depth == 0 and ids:
        raise ValueError("the prefix tree's root holds cluster ids")
    if not all(_is_int(cid) and lengths.get(cid, -1) == length for cid in ids):
        raise ValueError("the prefix tree places a cluster it does not hold, or one under "
                         "the wrong token count")
    node = Node()
    node.cluster_ids = list(ids)
    for token, child in children.items():
        if depth == 0 and not token.isdigit():
            raise ValueError(f"the prefix tree's first level has {token!r}, not a token count")
        node.key_to_child_node[token] = _tree_from_data(
            child, lengths, depth + 1, int(token) if depth == 0 else length)
    return node


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_settings(settings: Any) -> dict:
    if not isinstance(settings, dict):
        raise TypeError("settings is not an object")
    sim_th, depth, masking = settings["sim_th"], settings["depth"], settings["masking"]
    if not (isinstance(sim_th, (int, float)) and not isinstance(sim_th, bool)
            and math.isfinite(sim_th) and 0 <= sim_th <= 1):
        raise ValueError(f"sim_th {sim_th!r} is not a number in [0, 1]")
    if not (_is_int(depth) and 3 <= depth <= MAX_DEPTH):
        raise ValueError(f"depth {depth!r} is not an integer in [3, {MAX_DEPTH}]")
    if not (isinstance(masking, list) and all(
            isinstance(pair, list) and len(pair) == 2
            and all(isinstance(part, str) for part in pair) for pair in masking)):
        raise TypeError("masking is not a list of [pattern, name] pairs")
    return {"sim_th": sim_th, "depth": depth, "masking": masking}


def _check_clusters(clusters: Any) -> list[tuple[int, list[str], int]]:
    if not isinstance(clusters, list):
        raise TypeError("clusters is not a list")
    checked = []
    for entry in clusters:
        if not (isinstance(entry, list) and len(entry) == 3 and _is_int(entry[0])
                and entry[0] >= 1 and isinstance(entry[1], list)
                and all(isinstance(token, str) for token in entry[1])
                and _is_int(entry[2]) and entry[2] >= 1):
            raise TypeError(f"cluster {str(entry)[:80]} is not [id, [tokens], size]")
        checked.append((entry[0], entry[1], entry[2]))
    if len({cid for cid, _, _ in checked}) != len(checked):
        raise ValueError("two clusters share one id")
    return checked


def _drain_from_state(state: dict, settings: dict):
    """A Drain holding exactly the clusters and prefix tree of a version-2 state."""
    from drain3.drain import LogCluster

    clusters = _check_clusters(state["clusters"])
    counter = state["clusters_counter"]
    if not (_is_int(counter) and counter >= max((cid for cid, _, _ in clusters), default=0)):
        raise ValueError("clusters_counter is below the largest cluster id")
    drain = _new_drain(settings)
    for cid, tokens, size in clusters:
        cluster = LogCluster(tokens, cid)
        cluster.size = size
        drain.id_to_cluster[cid] = cluster
    drain.clusters_counter = counter
    drain.root_node = _tree_from_data(state["tree"], {cid: len(tokens)
                                                      for cid, tokens, _ in clusters})
    return drain


def _read_json(path: Path) -> dict:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RadarError(f"{path}: cannot read the template state ({type(exc).__name__}: "
                         f"{str(exc)[:120]}); pass the drain_state.json an earlier `radar "
                         "ingest` wrote, or a new --state path to start afresh (event ids "
                         "will then differ from older days)") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise RadarError(f"{path} is not a radar ingest template state; pass the "
                         "drain_state.json an earlier `radar ingest` wrote, or a new --state "
                         "path to start afresh")
    return state


def load_state(path: Path) -> TemplateStore:
    """The TemplateStore saved at ``path`` (RadarError naming the file and the fix)."""
    state = _read_json(path)
    version = state.get("version")
    if version == JSONPICKLE_VERSION:
        raise RadarError(f"{path} is an old template state holding a jsonpickle snapshot, "
                         "which can run code when loaded, so RADAR no longer loads it; "
                         "convert it once with `radar ingest --migrate-state --out DIR` "
                         "(or --state FILE), which reads only its ids and templates")
    if version != STATE_VERSION:
        raise RadarError(f"{path}: template state version {version!r}, this RADAR reads "
                         f"{STATE_VERSION}; pass a new --state path to start afresh")
    try:
        settings = _check_settings(state["settings"])
        store = TemplateStore(settings, _drain_from_state(state, settings))
    except RadarError as exc:           # a masking pattern that does not compile
        raise RadarError(f"{path}: {exc}; restore the file or pass a new --state") from None
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise RadarError(f"{path}: the template state is damaged ({type(exc).__name__}: "
                         f"{str(exc)[:120]}); restore it, or pass a new --state to start "
                         "afresh") from None
    return store


# ---------------------------------------------------------------- migrating version 1

def _pickled_slots(obj: Any) -> dict:
    """The attribute dict of a jsonpickled ``__slots__`` object, read as plain JSON."""
    if isinstance(obj, dict):
        state = obj.get("py/state", obj)
        if isinstance(state, dict) and "py/tuple" in state:
            state = state["py/tuple"]
        if isinstance(state, list) and len(state) == 2 and isinstance(state[1], dict):
            return state[1]
        if isinstance(state, dict):
            return state
    raise TypeError("not a pickled object")


def _migrated_tree(node: Any, depth: int = 0) -> list:
    if depth > MAX_DEPTH + 1:
        raise ValueError("the prefix tree is deeper than any Drain depth")
    slots = _pickled_slots(node)
    return [slots["cluster_ids"], {token: _migrated_tree(child, depth + 1)
                                   for token, child in slots["key_to_child_node"].items()}]


def migrate_state(path: Path) -> TemplateStore:
    """Convert a version-1 (jsonpickle) state at ``path`` to version 2, in place.

    The snapshot is parsed with :mod:`json` only: the cluster ids, template tokens and
    sizes, the id counter and the prefix tree's shape are taken; every other field
    (``py/object``, ``py/reduce``, ...) is ignored, so nothing in it runs. The old file
    is kept beside the new one as ``NAME.v1``.
    """
    state = _read_json(path)
    if state.get("version") == STATE_VERSION:
        return load_state(path)
    if state.get("version") != JSONPICKLE_VERSION or not isinstance(state.get("drain"), str):
        raise RadarError(f"{path}: not a version-1 template state, nothing to migrate")
    try:
        settings = _check_settings(state["settings"])
        drain = _pickled_slots(json.loads(state["drain"]))
        clusters = []
        for cluster in drain["id_to_cluster"].values():
            slots = _pickled_slots(cluster)
            tokens = slots["log_template_tokens"]
            tokens = tokens.get("py/tuple") if isinstance(tokens, dict) else tokens
            clusters.append([slots["cluster_id"], tokens, slots["size"]])
        clusters.sort(key=lambda entry: entry[0] if _is_int(entry[0]) else 0)
        plain = {"clusters": clusters, "clusters_counter": drain["clusters_counter"],
                 "tree": _migrated_tree(drain["root_node"])}
        store = TemplateStore(settings, _drain_from_state(plain, settings))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise RadarError(f"{path}: cannot migrate the template state ({type(exc).__name__}: "
                         f"{str(exc)[:120]}); pass a new --state path to start afresh "
                         "(event ids will then differ from older days)") from None
    backup = path.with_name(path.name + ".v1")
    atomic_write_text(backup, path.read_text(encoding="utf-8"))
    store.save(path)
    return store


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
