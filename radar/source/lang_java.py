"""Java logging statements: log4j/commons-logging, SLF4J ``{}``, java.util.logging,
flogger, ``System.out/err``; messages from concatenation, ``String.format``,
``MessageFormat.format``, ``StringBuilder.append`` chains and conditionals."""

from __future__ import annotations

import textwrap

from radar.source.extract import (
    PRINT_WORDS,
    FileExtractor,
    is_logger_name,
    level_of,
    string_parts,
    text_of,
)
from radar.source.templates import SLOT, Parts

_FORMAT_CALLS = {"format": "printf", "formatted": "printf", "printf": "printf"}


class JavaExtractor(FileExtractor):
    call_types = frozenset({"method_invocation"})
    declaration_types = frozenset({"local_variable_declaration", "field_declaration",
                                   "constant_declaration", "assignment_expression"})
    function_types = frozenset({"method_declaration", "constructor_declaration",
                                "lambda_expression", "compact_constructor_declaration"})
    class_types = frozenset({"class_declaration", "interface_declaration", "enum_declaration",
                             "record_declaration"})

    def function_name(self, node) -> str | None:
        if node.type == "lambda_expression":
            return None
        return super().function_name(node)

    def callee(self, node):
        receiver = node.child_by_field_name("object")
        return (text_of(node.child_by_field_name("name"), self.source),
                text_of(receiver, self.source).rsplit(".", 1)[-1] if receiver else None)

    def parameters_of(self, function) -> list[str]:
        parameters = function.child_by_field_name("parameters")
        if parameters is None or parameters.type != "formal_parameters":
            return []
        names = [p.child_by_field_name("name") for p in parameters.named_children
                 if p.type == "formal_parameter"]
        return [text_of(name, self.source) for name in names if name is not None]

    def log_call(self, node):
        name = text_of(node.child_by_field_name("name"), self.source)
        receiver = node.child_by_field_name("object")
        args = _arguments(node)
        wrapper, wrapper_level = self.options.wrapper_level(name)
        if wrapper:
            return wrapper_level, text_of(receiver, self.source) if receiver else None, args, None
        if receiver is None:
            return None
        receiver_text = text_of(receiver, self.source)
        if receiver_text in ("System.out", "System.err") and name in PRINT_WORDS:
            return None, receiver_text, args, "printf" if name == "printf" else None
        if receiver.type == "method_invocation" and name == "log":      # flogger
            level = level_of(text_of(receiver.child_by_field_name("name"), self.source))
            if level:
                return level, receiver_text, args, "printf"
        last = receiver_text.rsplit(".", 1)[-1]
        if not is_logger_name(last, self.options):
            return None
        if name in ("log", "logp"):
            return self._level_argument(args, receiver_text)
        level = level_of(name)
        if level is None:
            return None
        return level, receiver_text, args, "slf4j"

    def _level_argument(self, args, receiver_text):
        """``log(Level.WARNING, msg, ...)``: the level is an argument."""
        for i, arg in enumerate(args[:2]):
            level = level_of(text_of(arg, self.source).rsplit(".", 1)[-1])
            if level:
                return level, receiver_text, args[i + 1:], "brace"
        return None, receiver_text, args, None

    def message_parts(self, args, style):
        if not args:
            return []
        index, parts = self.pick_message(args)
        if style == "slf4j" and not _has_braces(parts):
            return parts    # log4j's (message, throwable): the stack trace has its own lines
        return self.fill(parts, len(args) - index - 1, style)

    def declarations_of(self, node):
        if node.type not in ("local_variable_declaration", "field_declaration",
                             "constant_declaration"):
            if node.type == "assignment_expression":
                left = node.child_by_field_name("left")
                if left is not None and left.type in ("identifier", "field_access"):
                    name = text_of(left, self.source).rsplit(".", 1)[-1]
                    return [(name, node.child_by_field_name("right"), False)]
            return []
        modifiers = next((c for c in node.children if c.type == "modifiers"), None)
        constant = modifiers is not None and "final" in text_of(modifiers, self.source).split()
        out = []
        for declarator in node.children_by_field_name("declarator"):
            value = declarator.child_by_field_name("value")
            if value is not None:
                name = text_of(declarator.child_by_field_name("name"), self.source)
                out.append((name, value, constant or node.type == "constant_declaration"))
        return out

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind == "string_literal":
            parts = string_parts(node, self.source, lambda child: [SLOT])
            if any(c.type == "multiline_string_fragment" for c in node.named_children):
                parts = [textwrap.dedent(p).strip("\n") if isinstance(p, str) else p
                         for p in parts]
            return parts
        if kind == "character_literal":
            return [text_of(node, self.source)[1:-1]]
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[0])
        if kind == "binary_expression" and node.child_by_field_name("operator").type == "+":
            return (self.expression_parts(node.child_by_field_name("left"))
                    + self.expression_parts(node.child_by_field_name("right")))
        if kind == "ternary_expression":
            return [{"alts": [self.expression_parts(node.child_by_field_name("consequence")),
                              self.expression_parts(node.child_by_field_name("alternative"))]}]
        if kind == "identifier":
            return self.name_parts(text_of(node, self.source))
        if kind == "field_access":
            return self.name_parts(text_of(node.child_by_field_name("field"), self.source))
        if kind == "method_invocation":
            return self._call_parts(node)
        if kind == "object_creation_expression":
            # A builder named and appended to later holds more than its first text.
            return self._builder_parts(node) + [SLOT]
        return [SLOT]

    def _call_parts(self, node) -> Parts:
        name = text_of(node.child_by_field_name("name"), self.source)
        receiver = node.child_by_field_name("object")
        args = _arguments(node)
        if name == "append" and receiver is not None and args:
            start = (self._builder_parts(receiver) if receiver.type ==
                     "object_creation_expression" else self.expression_parts(receiver))
            return start + self.expression_parts(args[0])
        if name == "toString" and receiver is not None and _is_builder(receiver):
            return self.expression_parts(receiver)
        if name == "formatted" and receiver is not None:
            return [{"fmt": "printf", "parts": self.expression_parts(receiver)}]
        if name == "format" and args and receiver is not None:
            owner = text_of(receiver, self.source).rsplit(".", 1)[-1]
            style = "brace" if owner == "MessageFormat" else _FORMAT_CALLS.get(name)
            first = 1 if len(args) > 1 and args[0].type != "string_literal" and \
                "Locale" in text_of(args[0], self.source) else 0
            return [{"fmt": style, "parts": self.expression_parts(args[first])}]
        if name in ("valueOf", "concat") and receiver is not None and args:
            if name == "concat":
                return self.expression_parts(receiver) + self.expression_parts(args[0])
            return [SLOT]
        return [SLOT]


    def _builder_parts(self, node) -> Parts:
        """The text a ``new StringBuilder(...)`` (or any new object) starts with."""
        type_name = text_of(node.child_by_field_name("type"), self.source)
        args = _arguments(node)
        if type_name not in ("StringBuilder", "StringBuffer", "String"):
            return [SLOT]
        return self.expression_parts(args[0]) if args and args[0].type != \
            "decimal_integer_literal" else []


def _arguments(node) -> list:
    args = node.child_by_field_name("arguments")
    return list(args.named_children) if args is not None else []


def _is_builder(node) -> bool:
    while node is not None and node.type == "method_invocation":
        node = node.child_by_field_name("object")
    return node is not None and node.type == "object_creation_expression"


def _has_braces(parts: Parts) -> bool:
    """Whether an SLF4J message may hold ``{}``: it shows one, or it is all one name."""
    if len(parts) == 1 and isinstance(parts[0], dict) and "ref" in parts[0]:
        return True
    return any(isinstance(p, str) and "{}" in p for p in parts)
