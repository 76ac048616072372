"""Scala logging statements: Spark-style ``logInfo``/``logWarning``/... helpers and logger
objects (``log.info``, ``logger.warn``); messages from ``s""``/``f""``/``raw""``
interpolation, concatenation and ``"...".format(...)``."""

from __future__ import annotations

import re

from radar.source.extract import FileExtractor, decode_escape, is_logger_name, level_of, text_of
from radar.source.templates import SLOT, Parts

_LOG_HELPER = re.compile(r"^log(Trace|Debug|Info|Warning|Warn|Error)$")
_FORMAT_SPEC = re.compile(r"^%[-#+ 0,(]*\d*(?:\.\d+)?[a-zA-Z]")     # f"$x%.2f": x's format
_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{4}|.)")


class ScalaExtractor(FileExtractor):
    call_types = frozenset({"call_expression"})
    declaration_types = frozenset({"val_definition", "var_definition"})
    function_types = frozenset({"function_definition", "lambda_expression"})
    class_types = frozenset({"class_definition", "object_definition", "trait_definition"})

    def function_name(self, node) -> str | None:
        return None if node.type == "lambda_expression" else super().function_name(node)

    def callee(self, node):
        function = node.child_by_field_name("function")
        if function is None:
            return None
        if function.type == "identifier":
            return text_of(function, self.source), None
        if function.type == "field_expression":
            return (text_of(function.child_by_field_name("field"), self.source),
                    text_of(function.child_by_field_name("value"), self.source).rsplit(".")[-1])
        return None

    def parameters_of(self, function) -> list[str]:
        parameters = function.child_by_field_name("parameters")
        names = [p.child_by_field_name("name") for p in
                 (parameters.named_children if parameters is not None else [])]
        return [text_of(name, self.source) for name in names if name is not None]

    def log_call(self, node):
        function = node.child_by_field_name("function")
        args = _arguments(node)
        if function is None:
            return None
        if function.type == "identifier":
            name = text_of(function, self.source)
            wrapper, level = self.options.wrapper_level(name)
            if wrapper:
                return level, None, args, "printf"
            helper = _LOG_HELPER.match(name)        # Spark's Logging trait
            return (level_of(helper.group(1)), None, args, None) if helper else None
        if function.type != "field_expression":
            return None
        name = text_of(function.child_by_field_name("field"), self.source)
        receiver_text = text_of(function.child_by_field_name("value"), self.source)
        wrapper, level = self.options.wrapper_level(name)
        if wrapper:
            return level, receiver_text, args, "printf"
        if not is_logger_name(receiver_text.rsplit(".", 1)[-1], self.options):
            return None
        level = level_of(name)
        return (level, receiver_text, args, "slf4j") if level else None

    def message_parts(self, args, style):
        if not args:
            return []
        index, parts = self.pick_message(args)
        if style == "slf4j" and any(isinstance(p, str) and "{}" in p for p in parts):
            return self.fill(parts, len(args) - index - 1, style)
        return parts            # (message, throwable): the stack trace has its own lines

    def declarations_of(self, node):
        pattern, value = node.child_by_field_name("pattern"), node.child_by_field_name("value")
        if pattern is None or value is None or pattern.type != "identifier":
            return []
        return [(text_of(pattern, self.source), value, node.type == "val_definition")]

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind == "string":
            return [_string_text(text_of(node, self.source))]
        if kind == "interpolated_string_expression":
            return self._interpolated(node)
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[0])
        if kind == "infix_expression" and text_of(node.child_by_field_name("operator"),
                                                  self.source) == "+":
            return (self.expression_parts(node.child_by_field_name("left"))
                    + self.expression_parts(node.child_by_field_name("right")))
        if kind == "identifier":
            return self.name_parts(text_of(node, self.source))
        if kind == "field_expression":
            return self.name_parts(text_of(node.child_by_field_name("field"), self.source))
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            if function is not None and function.type == "field_expression" and text_of(
                    function.child_by_field_name("field"), self.source) in ("format",
                                                                            "formatted"):
                receiver = function.child_by_field_name("value")
                return [{"fmt": "printf", "parts": self.expression_parts(receiver)}]
        return [SLOT]

    def _interpolated(self, node) -> Parts:
        """``s"a $x b ${y}"``: the text between interpolations, each interpolation a slot."""
        interpolator = text_of(node.child_by_field_name("interpolator"), self.source)
        body = next((c for c in node.named_children if c.type == "interpolated_string"), None)
        if body is None:
            return [SLOT]
        raw = interpolator == "raw"
        parts: Parts = []
        cursor = body.start_byte
        for child in body.named_children:
            if child.type != "interpolation":
                continue
            parts.append(self.source[cursor:child.start_byte].decode("utf-8", "replace"))
            parts.append(SLOT)
            cursor = child.end_byte
        parts.append(self.source[cursor:body.end_byte].decode("utf-8", "replace"))
        parts[0] = _strip_quotes(parts[0], leading=True)
        parts[-1] = _strip_quotes(parts[-1], leading=False)
        out: Parts = []
        for part in parts:
            if isinstance(part, str):
                if interpolator == "f" and out and out[-1] is None:
                    part = _FORMAT_SPEC.sub("", part)
                part = part.replace("$$", "$")
                part = part if raw else _ESCAPE.sub(lambda m: decode_escape(m.group()), part)
            out.append(part)
        return out


def _strip_quotes(text: str, leading: bool) -> str:
    quote = '"""' if (text.startswith('"""') if leading else text.endswith('"""')) else '"'
    if leading:
        return text.removeprefix(quote)
    return text.removesuffix(quote)


def _string_text(literal: str) -> str:
    if literal.startswith('"""'):
        return literal[3:-3]
    return _ESCAPE.sub(lambda m: decode_escape(m.group()), literal[1:-1])


def _arguments(node) -> list:
    args = node.child_by_field_name("arguments")
    return list(args.named_children) if args is not None else []
