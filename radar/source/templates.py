"""Message templates of logging statements: constant parts and parameter slots.

An extractor turns a message expression into *parts*, plain JSON data:

- ``"text"``: constant text;
- ``None``: a slot (a value known only at run time);
- ``{"ref": NAME}``: the value of a named constant or variable, resolved later across files;
- ``{"param": NAME, "index": I}``: the enclosing function's parameter I (a slot, and what
  the function's callers pass there: see :mod:`radar.source.resolve`);
- ``{"alts": [parts, ...]}``: one of several messages (a conditional expression);
- ``{"fmt": STYLE, "parts": parts, "args": N}``: a format string whose placeholders become
  slots once its text is known (``printf``: ``%s``/``%d``/``%v``..., ``brace``:
  ``{}``/``{0}``/``{name}``, ``slf4j``: ``{}``); of its ``N`` arguments (when given) those
  no placeholder takes are printed after it.

:func:`resolve` expands that into plain templates (lists of strings and ``None``), the form
the matcher reads; :func:`display` writes one as text with ``<*>`` for each slot.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

Parts = list            # list of str | None | dict
Template = list         # list of str | None, constants merged, no two slots in a row

MAX_ALTERNATIVES = 8    # messages one statement may expand into (nested conditionals)
MAX_DEPTH = 4           # references followed through other references

SLOT = None
_PLACEHOLDERS = {
    "printf": re.compile(r"%%|%(?:\(\w+\))?(?:\d+\$)?[-#+ 0,(<']*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
                         r"(?:hh|ll|[hlLqjzt])?[a-zA-Z]"),
    "brace": re.compile(r"\{\{|\}\}|\{[^{}]*\}"),
    "slf4j": re.compile(r"\\\{\}|\{\}"),
}
_LITERAL_ESCAPES = {"%%": "%", "{{": "{", "}}": "}", "\\{}": "{}"}


def split_placeholders(text: str, style: str) -> Template:
    """Constant text of a format string with its placeholders as slots."""
    pattern = _PLACEHOLDERS[style]
    out: Template = []
    last = 0
    for found in pattern.finditer(text):
        out.append(text[last:found.start()])
        token = found.group()
        out.append(_LITERAL_ESCAPES.get(token, SLOT))
        last = found.end()
    out.append(text[last:])
    return normalize(out)


def normalize(template: Template) -> Template:
    """Merge adjacent constants, drop empty ones, collapse runs of slots."""
    out: Template = []
    for part in template:
        if part is None:
            if not out or out[-1] is not None:
                out.append(None)
        elif part:
            if out and isinstance(out[-1], str):
                out[-1] += part
            else:
                out.append(part)
    return out


def has_constant(parts: Parts) -> bool:
    """Whether ``parts`` hold any constant text (a message worth resolving by name)."""
    for part in parts:
        if isinstance(part, str) and part.strip():
            return True
        if isinstance(part, dict):
            if "fmt" in part and has_constant(part["parts"]):
                return True
            if "alts" in part and any(has_constant(alt) for alt in part["alts"]):
                return True
    return False


Lookup = Callable[[str], "Parts | None"]


def resolve(parts: Parts, lookup: Lookup, depth: int = 0) -> list[Template]:
    """Every plain template ``parts`` can stand for (at most :data:`MAX_ALTERNATIVES`).

    ``lookup(name)`` gives the parts of a named value, or None when it is unknown (then
    the reference is a slot).
    """
    options: list[list[Template]] = []
    for part in parts:
        options.append(_resolve_part(part, lookup, depth))
    out: list[Template] = []
    seen = set()
    for combo in itertools.product(*options):
        template = normalize([piece for chosen in combo for piece in chosen])
        key = tuple(template)
        if key not in seen:
            seen.add(key)
            out.append(template)
        if len(out) >= MAX_ALTERNATIVES:
            break
    return out or [[]]


def _resolve_part(part, lookup: Lookup, depth: int) -> list[Template]:
    if part is None or isinstance(part, str):
        return [[part]]
    if "param" in part:
        return [[SLOT]]
    if "ref" in part:
        found = lookup(part["ref"]) if depth < MAX_DEPTH else None
        return resolve(found, lookup, depth + 1) if found is not None else [[SLOT]]
    if "alts" in part:
        out: list[Template] = []
        for alt in part["alts"]:
            out.extend(resolve(alt, lookup, depth))
        return out[:MAX_ALTERNATIVES]
    if "fmt" in part:
        return [_apply_format(template, part["fmt"], part.get("args"))
                for template in resolve(part["parts"], lookup, depth)]
    raise ValueError(f"unknown template part {part!r}")


def _apply_format(template: Template, style: str, args: int | None) -> Template:
    """Placeholders become slots; arguments beyond them are printed after the message
    (a trailing slot), as SLF4J, ``console.log`` and Python's ``print`` do."""
    out: Template = []
    for piece in template:
        out.extend([SLOT] if piece is None else split_placeholders(piece, style))
    placeholders = sum(1 for piece in out if piece is None) - template.count(None)
    if args is not None and args > placeholders:
        out.extend([" ", SLOT])
    return normalize(out)


def substitute_parameter(parts: Parts, index: int, value: Parts) -> Parts:
    """``parts`` with parameter ``index`` replaced by ``value`` (a caller's argument)."""
    out: Parts = []
    for part in parts:
        if isinstance(part, dict) and part.get("index") == index and "param" in part:
            out.extend(value)
        elif isinstance(part, dict) and "fmt" in part:
            out.append(dict(part, parts=substitute_parameter(part["parts"], index, value)))
        elif isinstance(part, dict) and "alts" in part:
            out.append({"alts": [substitute_parameter(alt, index, value)
                                 for alt in part["alts"]]})
        else:
            out.append(part)
    return out


def display(template: Template) -> str:
    """A template as text, ``<*>`` for each slot."""
    return "".join("<*>" if part is None else part for part in template)


def constant_length(template: Template) -> int:
    """Characters of constant, non-space text: how specific a template is."""
    return sum(len(part.replace(" ", "")) for part in template if part is not None)
