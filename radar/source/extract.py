"""Logging statements out of one parsed source file: the shared walk over a tree-sitter tree.

A language (``radar.source.lang_*``) says which calls log, what their arguments are and
how its expressions become template parts (:mod:`radar.source.templates`); this module
walks the tree once, resolves local names inside the file, and records per statement its
level, file position, enclosing class and function and text. Names it cannot resolve in
the file stay ``{"ref": NAME}`` for :mod:`radar.source.index` to resolve across files.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import re
from typing import Any

from radar.source.templates import SLOT, Parts, has_constant

# Method or function names that log, and the level each stands for.
LEVEL_WORDS = {
    "trace": "trace", "finest": "trace", "finer": "debug", "fine": "debug", "debug": "debug",
    "info": "info", "config": "info", "notice": "info", "information": "info",
    "warn": "warn", "warning": "warn", "error": "error", "severe": "error",
    "exception": "error", "err": "error", "fatal": "fatal", "critical": "fatal",
    "crit": "fatal", "panic": "fatal", "alert": "fatal", "emerg": "fatal",
}
PRINT_WORDS = frozenset({"print", "println", "printf", "log", "logf", "write", "writeln"})
# A receiver named like a logger: log, LOG, logger, _log, stateChangeLog, auditLogger...
_LOGGER_NAME = re.compile(r"^_*(?i:log|logger|logging|logs)$|(Log|Logger|LOG|LOGGER|_log|_logger)$")
_LEVEL_SUFFIX = re.compile(r"^(?P<word>[a-z]+?)(?:f|ln|w|context|ctx|s)?$")
MAX_STATEMENT_CHARS = 800


@dataclasses.dataclass(frozen=True)
class ExtractOptions:
    """Names beyond the common ones: receivers that are loggers, functions that log."""

    loggers: tuple[str, ...] = ()
    wrappers: tuple[str, ...] = ()      # NAME or NAME:LEVEL

    def wrapper_level(self, name: str) -> tuple[bool, str | None]:
        for entry in self.wrappers:
            wrapper, _, level = entry.partition(":")
            if wrapper == name:
                return True, (level or None)
        return False, None


def level_of(method: str) -> str | None:
    """The level a logging method name stands for (``warnf`` -> warn), or None."""
    found = _LEVEL_SUFFIX.match(method.lower())
    word = method.lower()
    if word in LEVEL_WORDS:
        return LEVEL_WORDS[word]
    if found and found.group("word") in LEVEL_WORDS:
        return LEVEL_WORDS[found.group("word")]
    if word.startswith("at") and word[2:] in LEVEL_WORDS:     # flogger: atInfo().log(...)
        return LEVEL_WORDS[word[2:]]
    return None


def is_logger_name(name: str, options: ExtractOptions) -> bool:
    return name in options.loggers or bool(_LOGGER_NAME.search(name))


def text_of(node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f",
                   "'": "'", '"': '"', "\\": "\\", "`": "`", "$": "$", "{": "{"}


def decode_escape(text: str) -> str:
    body = text[1:]
    if body[:1] in _SIMPLE_ESCAPES and len(body) == 1:
        return _SIMPLE_ESCAPES[body]
    try:
        return codecs.decode(text, "unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return body


def string_parts(node, source: bytes, interpolation) -> Parts:
    """The parts of a string literal node, in any of the grammars: its fragments and
    escapes as text, interpolations (f-strings, template literals) through
    ``interpolation(child)``."""
    parts: Parts = []
    for child in node.named_children:
        kind = child.type
        if "escape" in kind:
            parts.append(decode_escape(text_of(child, source)))
        elif "fragment" in kind or "content" in kind:
            parts.append(text_of(child, source))
        elif "interpolation" in kind or "substitution" in kind:
            parts.extend(interpolation(child))
    return parts


def _parameter_index(parts: Parts) -> int | None:
    """The index of the first parameter ``parts`` print, looking into formats and branches."""
    for part in parts:
        if isinstance(part, dict):
            if "param" in part:
                return part["index"]
            for inner in [part.get("parts") or []] + list(part.get("alts") or []):
                found = _parameter_index(inner)
                if found is not None:
                    return found
    return None


@functools.lru_cache(maxsize=64)
def _query(language, node_types: frozenset[str]):
    from tree_sitter import Query

    return Query(language, "[" + " ".join(f"({kind})" for kind in sorted(node_types)) + "] @n")


def _captures(tree, node_types: frozenset[str]) -> list:
    """Every node of ``node_types`` in ``tree``, in source order (a tree-sitter query:
    the walk runs in C, not node by node in Python)."""
    from tree_sitter import QueryCursor

    nodes = QueryCursor(_query(tree.language, node_types)).captures(tree.root_node).get("n", [])
    return sorted(nodes, key=lambda node: node.start_byte)


@dataclasses.dataclass
class Declaration:
    """A name bound to a value in the file: a constant, field or local variable."""

    name: str
    value: Any            # the value's node
    scope: Any            # the enclosing function node, or None at file/class level
    start: int            # byte offset, to pick the binding in force at a call
    constant: bool


class FileExtractor:
    """Shared walk; subclasses give the language's node types and rules."""

    call_types: frozenset[str] = frozenset()
    declaration_types: frozenset[str] = frozenset()     # nodes declarations_of reads
    message_window = 3          # arguments searched for the message
    function_types: frozenset[str] = frozenset()
    class_types: frozenset[str] = frozenset()
    statement_suffixes = ("statement", "declaration", "expression_statement")

    def __init__(self, source: bytes, options: ExtractOptions):
        self.source, self.options = source, options
        self.declarations: dict[str, list[Declaration]] = {}
        self._resolving: set[str] = set()
        self._call = None

    # -- language hooks ---------------------------------------------------------------
    def log_call(self, node) -> tuple[str | None, str, list, str | None] | None:
        """(level, logger text, arguments, format style when args fill placeholders), or
        None when ``node`` does not log."""
        raise NotImplementedError

    def declarations_of(self, node) -> list[tuple[str, Any, bool]]:
        """(name, value node, constant?) bound by ``node``."""
        return []

    def expression_parts(self, node) -> Parts:
        raise NotImplementedError

    def callee(self, node) -> tuple[str, str | None] | None:
        """(function name, last name of its receiver or None) of a call node."""
        return None

    def call_arguments(self, node) -> list:
        args = node.child_by_field_name("arguments")
        return list(args.named_children) if args is not None else []

    def parameters_of(self, function) -> list[str]:
        """Parameter names of a function node, in the order callers pass them."""
        return []

    def function_name(self, node) -> str | None:
        name = node.child_by_field_name("name")
        return text_of(name, self.source) if name is not None else None

    def class_name(self, node) -> str | None:
        return self.function_name(node)

    # -- the walk -----------------------------------------------------------------------
    def run(self, tree) -> tuple[list[dict], list[dict], list[dict]]:
        """(statements, definitions, call sites passing text) of the file in ``tree``."""
        found = _captures(tree, self.call_types | self.declaration_types)
        calls = []
        for node in found:
            if node.type in self.call_types:
                calls.append(node)
            for name, value, constant in self.declarations_of(node):
                scope = self._enclosing_function(node)
                self.declarations.setdefault(name, []).append(
                    Declaration(name, value, scope, node.start_byte, constant))
        statements, sites = [], []
        for call in calls:
            found = self.log_call(call)
            if found is not None:
                statement = self._statement(call, *found)
                if statement is not None:
                    statements.append(statement)
            else:
                site = self._call_site(call)
                if site is not None:
                    sites.append(site)
        statements.sort(key=lambda s: (s["line"], s["column"]))
        return statements, self._definitions(), sites

    def _statement(self, call, level, logger, args, style) -> dict | None:
        self._call = call
        parts = self.message_parts(args, style)
        self._call = None
        if not parts:
            return None
        statement = dict(self.position(call), level=level, logger=logger, parts=parts)
        index = _parameter_index(parts)
        if index is not None:           # logs its own parameter: a wrapper, see resolve.py
            statement["wrapper"] = {"index": index}
        return statement

    def _call_site(self, call) -> dict | None:
        """A call passing text (a quote in an argument) to a function that may log it:
        ``{name, receiver, args: {index: parts}}`` and where it is."""
        callee = self.callee(call)
        if callee is None:
            return None
        texts = {}
        for index, arg in enumerate(self.call_arguments(call)[:4]):
            if not any(quote in text_of(arg, self.source) for quote in "\"'`"):
                continue
            self._call = call
            parts = self.expression_parts(arg)
            self._call = None
            if has_constant(parts):
                texts[str(index)] = parts
        if not texts:
            return None
        return dict(self.position(call), name=callee[0], receiver=callee[1], args=texts)

    def message_parts(self, args: list, style: str | None) -> Parts:
        """Parts of the message argument with its placeholders filled by the arguments
        after it (see :meth:`pick_message` and :meth:`fill`)."""
        if not args:
            return []
        index, parts = self.pick_message(args)
        return self.fill(parts, len(args) - index - 1, style)

    def pick_message(self, args: list) -> tuple[int, Parts]:
        """The message argument: the first of the first :attr:`message_window` that holds
        constant text (after a level, context, marker or writer), else the first."""
        candidates = [(i, self.expression_parts(arg))
                      for i, arg in enumerate(args[:self.message_window])]
        return next(((i, p) for i, p in candidates if has_constant(p)), candidates[0])

    @staticmethod
    def fill(parts: Parts, extras: int, style: str | None) -> Parts:
        """Placeholders of ``style`` become slots when ``extras`` arguments follow; what
        they do not fill is printed after the message (a trailing slot, maybe empty)."""
        if extras and style:
            return [{"fmt": style, "parts": parts, "args": extras}]
        if extras:
            parts = parts + [" ", SLOT]
        return parts

    def position(self, node, at_statement: bool = False) -> dict:
        """Where ``node`` is: its line (or, ``at_statement``, its statement's first line),
        the statement's last line and text, the enclosing function and class."""
        statement = node
        while statement.parent is not None and not statement.type.endswith(
                self.statement_suffixes) and statement.parent.type not in self.function_types:
            statement = statement.parent
        text = text_of(statement, self.source)
        if len(text) > MAX_STATEMENT_CHARS:
            text = text[:MAX_STATEMENT_CHARS] + " ..."
        function, klass = None, None
        parent = node.parent
        while parent is not None:
            if function is None and parent.type in self.function_types:
                function = self.function_name(parent)
            if klass is None and parent.type in self.class_types:
                klass = self.class_name(parent)
            parent = parent.parent
        start = statement if at_statement else node
        return {"line": start.start_point[0] + 1, "end_line": statement.end_point[0] + 1,
                "column": node.start_point[1], "function": function, "class": klass,
                "statement": text}

    # -- names --------------------------------------------------------------------------
    def name_parts(self, name: str) -> Parts:
        """A name at the current call: its local or file-level value, a parameter of the
        enclosing function, else a reference."""
        binding = self._binding(name)
        if binding is None and self._call is not None:
            function = self._enclosing_function(self._call)
            names = self.parameters_of(function) if function is not None else []
            if name in names:
                return [{"param": name, "index": names.index(name)}]
        if binding is None or name in self._resolving:
            return [{"ref": name}]
        self._resolving.add(name)
        try:
            return self.expression_parts(binding.value)
        finally:
            self._resolving.discard(name)

    def _binding(self, name: str) -> Declaration | None:
        where = self._call
        if where is None:
            return None
        scope = self._enclosing_function(where)
        local = [d for d in self.declarations.get(name, ())
                 if d.scope is not None and scope is not None and d.scope.id == scope.id
                 and d.start < where.start_byte]
        if local:
            return max(local, key=lambda d: d.start)
        file_level = [d for d in self.declarations.get(name, ()) if d.scope is None]
        if len(file_level) == 1 or any(d.constant for d in file_level):
            return next((d for d in file_level if d.constant), file_level[0])
        return None

    def _enclosing_function(self, node):
        parent = node.parent
        while parent is not None and parent.type not in self.function_types:
            parent = parent.parent
        return parent

    def _definitions(self) -> list[dict]:
        """Every named value holding constant text, for references from other files."""
        out = []
        for name, bindings in self.declarations.items():
            for binding in bindings:
                self._call = binding.value
                parts = self.expression_parts(binding.value)
                self._call = None
                if not has_constant(parts):
                    continue
                # A local is never a constant for other files, final or not.
                out.append(dict(self.position(binding.value, at_statement=True), name=name,
                                parts=parts, constant=binding.constant and binding.scope is None,
                                local=binding.scope is not None))
        out.sort(key=lambda d: (d["line"], d["name"]))
        return out
