"""Names across files: a statement's references become the text they stand for.

A reference inside a message (``"x " + Messages.PREFIX + y``) takes the value of the one
*constant* of that name in the index (its own file's first); any other stays a slot. A
message that is nothing but a reference to a variable built elsewhere
(``LOG.info(fmt)`` where ``fmt`` was composed in another class and passed in) becomes an
*indirect* statement at each place such a variable is built (at most
:data:`MAX_INDIRECT` of them): that is where its text is written, and ``logged_at``
names the call that prints it. Likewise a function that logs its own parameter makes
each call passing it text an indirect statement (:func:`_wrapped_calls`).
"""

from __future__ import annotations

from radar.source.templates import SLOT, Parts, has_constant, resolve, substitute_parameter

MAX_INDIRECT = 4


def resolve_entries(entries: list[dict]) -> None:
    """Set ``templates`` on every statement and ``indirect`` on every file entry."""
    constants: dict[str, list[tuple[int, dict]]] = {}
    variables: dict[str, list[tuple[int, dict]]] = {}
    for number, entry in enumerate(entries):
        for definition in entry["definitions"]:
            target = constants if definition["constant"] else variables
            target.setdefault(definition["name"], []).append((number, definition))
        entry["indirect"] = []
    for number, entry in enumerate(entries):
        lookup = _constant_lookup(constants, number)
        for statement in entry["statements"]:
            statement["templates"] = resolve(statement["parts"], lookup)
            name, wrap = _only_reference(statement["parts"])
            if name is None or lookup(name) is not None:
                continue
            for site_number, definition in _sites(variables.get(name, []), number):
                site = entries[site_number]
                parts = wrap(definition["parts"])
                site["indirect"].append({
                    key: definition[key] for key in ("line", "end_line", "column", "function",
                                                     "class", "statement")} | {
                    "level": statement["level"], "logger": statement["logger"],
                    "parts": parts,
                    "templates": resolve(parts, _constant_lookup(constants, site_number)),
                    "logged_at": {"root": entry["root"], "file": entry["file"],
                                  "line": statement["line"]}})
    _wrapped_calls(entries, constants)


def _wrapped_calls(entries: list[dict], constants: dict) -> None:
    """Functions that log their own parameter (``void audit(String what) { LOG.info(
    "audit: " + what); }``): each call passing text there is an indirect statement at the
    call, printing the function's message with the caller's text in it. A call counts when
    it is in the function's file, names its class (``Audit.audit(...)``), or when no
    other logging function has that name."""
    wrappers: dict[str, list[tuple[int, dict]]] = {}
    for number, entry in enumerate(entries):
        for statement in entry["statements"]:
            if "wrapper" in statement and statement["function"]:
                wrappers.setdefault(statement["function"], []).append((number, statement))
    for number, entry in enumerate(entries):
        for call in entry.get("calls", ()):
            found = wrappers.get(call["name"], [])
            unique = len({(n, s["class"]) for n, s in found}) == 1
            for home, statement in found:
                index = str(statement["wrapper"]["index"])
                if index not in call["args"] or not (
                        home == number or call["receiver"] == statement["class"] or unique):
                    continue
                parts = substitute_parameter(statement["parts"], int(index), call["args"][index])
                entry["indirect"].append({
                    key: call[key] for key in ("line", "end_line", "column", "function",
                                               "class", "statement")} | {
                    "level": statement["level"], "logger": statement["logger"],
                    "parts": parts, "templates": resolve(parts, _constant_lookup(constants,
                                                                                  number)),
                    "logged_at": {"root": entries[home]["root"], "file": entries[home]["file"],
                                  "line": statement["line"]}})


def _constant_lookup(constants: dict, number: int):
    def lookup(name: str) -> Parts | None:
        found = constants.get(name, [])
        own = [d for n, d in found if n == number]
        if own:
            return own[0]["parts"]
        distinct = {repr(d["parts"]): d["parts"] for _, d in found}
        return next(iter(distinct.values())) if len(distinct) == 1 else None
    return lookup


def _only_reference(parts: Parts):
    """(name, rewrap) when ``parts`` is one reference, maybe formatted and followed by the
    trailing slot of extra arguments; (None, None) otherwise."""
    trailing = parts[-2:] == [" ", SLOT]
    core = parts[:-2] if trailing else parts
    fmt = None
    if len(core) == 1 and isinstance(core[0], dict) and "fmt" in core[0]:
        fmt, core = core[0], core[0]["parts"]
    if len(core) != 1 or not isinstance(core[0], dict) or "ref" not in core[0]:
        return None, None

    def wrap(inner: Parts) -> Parts:
        out = [dict(fmt, parts=inner)] if fmt else list(inner)
        return out + [" ", SLOT] if trailing else out
    return core[0]["ref"], wrap


def _sites(found: list[tuple[int, dict]], number: int) -> list[tuple[int, dict]]:
    """Where a variable of that name is built: its own file's sites if any, else all of
    them when there are few enough to be a real lead."""
    found = [(n, d) for n, d in found if has_constant(d["parts"])]
    own = [(n, d) for n, d in found if n == number]
    chosen = own or found
    return chosen if len(chosen) <= MAX_INDIRECT else []
