"""JavaScript and TypeScript logging statements: ``console.*``, winston/pino/bunyan-style
logger objects, ``logger.log(level, ...)``; messages from template literals,
concatenation, ``util.format`` and ``%s``-style arguments."""

from __future__ import annotations

from radar.source.extract import (
    FileExtractor,
    is_logger_name,
    level_of,
    string_parts,
    text_of,
)
from radar.source.templates import SLOT, Parts

_CONSOLE_LEVELS = {"log": None, "info": "info", "warn": "warn", "error": "error",
                   "debug": "debug", "trace": "trace"}


class JavaScriptExtractor(FileExtractor):
    call_types = frozenset({"call_expression"})
    declaration_types = frozenset({"variable_declarator", "assignment_expression"})
    function_types = frozenset({"function_declaration", "function_expression", "function",
                                "arrow_function", "method_definition",
                                "generator_function_declaration"})
    class_types = frozenset({"class_declaration", "class", "abstract_class_declaration"})

    def function_name(self, node) -> str | None:
        name = node.child_by_field_name("name")
        if name is not None:
            return text_of(name, self.source)
        parent = node.parent        # const handler = () => ...; {key: function () {...}}
        if parent is not None and parent.type in ("variable_declarator", "pair",
                                                  "assignment_expression"):
            target = (parent.child_by_field_name("name") or parent.child_by_field_name("key")
                      or parent.child_by_field_name("left"))
            return text_of(target, self.source) if target is not None else None
        return None

    def callee(self, node):
        function = node.child_by_field_name("function")
        if function.type == "identifier":
            return text_of(function, self.source), None
        if function.type == "member_expression":
            return (text_of(function.child_by_field_name("property"), self.source),
                    text_of(function.child_by_field_name("object"), self.source).rsplit(".")[-1])
        return None

    def call_arguments(self, node) -> list:
        return _arguments(node)

    def parameters_of(self, function) -> list[str]:
        single = function.child_by_field_name("parameter")
        if single is not None:
            return [text_of(single, self.source)]
        parameters = function.child_by_field_name("parameters")
        names = []
        for parameter in parameters.named_children if parameters is not None else []:
            target = (parameter.child_by_field_name("pattern")
                      or parameter.child_by_field_name("left") or parameter)
            names.append(text_of(target, self.source))
        return names

    def log_call(self, node):
        function = node.child_by_field_name("function")
        args = [a for a in _arguments(node) if a.type != "comment"]
        if function.type == "identifier":
            wrapper, level = self.options.wrapper_level(text_of(function, self.source))
            return (level, None, args, "printf") if wrapper else None
        if function.type != "member_expression":
            return None
        name = text_of(function.child_by_field_name("property"), self.source)
        receiver_text = text_of(function.child_by_field_name("object"), self.source)
        wrapper, level = self.options.wrapper_level(name)
        if wrapper:
            return level, receiver_text, args, "printf"
        if receiver_text == "console":
            if name not in _CONSOLE_LEVELS:
                return None
            return _CONSOLE_LEVELS[name], receiver_text, args, "console"
        if not is_logger_name(receiver_text.rsplit(".", 1)[-1], self.options):
            return None
        if name == "log" and args and args[0].type == "string":   # winston: log('warn', msg)
            level = level_of(text_of(args[0], self.source).strip("'\"`"))
            if level:
                return level, receiver_text, args[1:], "printf"
        level = level_of(name)
        return (level, receiver_text, args, "printf") if level else None

    def message_parts(self, args, style):
        if style != "console" or not args:
            return super().message_parts(args, style)
        # console.log: %-placeholders take arguments; the others are printed after, spaced.
        index, parts = self.pick_message(args)
        rest = args[index + 1:]
        if any(isinstance(p, str) and "%" in p for p in parts):
            return self.fill(parts, len(rest), "printf")
        for arg in rest:
            parts = parts + [" "] + self.expression_parts(arg)
        return parts

    def declarations_of(self, node):
        if node.type == "variable_declarator":
            name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
            if name is None or value is None or name.type != "identifier":
                return []
            declaration = node.parent
            constant = declaration is not None and text_of(
                declaration, self.source).startswith("const")
            return [(text_of(name, self.source), value, constant)]
        if node.type == "assignment_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is not None and left.type in ("identifier", "member_expression"):
                return [(text_of(left, self.source).rsplit(".", 1)[-1], right, False)]
        return []

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind in ("string", "template_string"):
            return string_parts(node, self.source, lambda child: [SLOT])
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[-1])
        if kind == "binary_expression" and node.child_by_field_name("operator").type == "+":
            return (self.expression_parts(node.child_by_field_name("left"))
                    + self.expression_parts(node.child_by_field_name("right")))
        if kind == "ternary_expression":
            return [{"alts": [self.expression_parts(node.child_by_field_name("consequence")),
                              self.expression_parts(node.child_by_field_name("alternative"))]}]
        if kind == "identifier":
            return self.name_parts(text_of(node, self.source))
        if kind == "member_expression":
            return self.name_parts(text_of(node.child_by_field_name("property"), self.source))
        if kind in ("as_expression", "non_null_expression", "satisfies_expression"):
            return self.expression_parts(node.named_children[0])
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            args = _arguments(node)
            if args and text_of(function, self.source) in ("util.format", "format"):
                return [{"fmt": "printf", "parts": self.expression_parts(args[0])}]
        return [SLOT]


def _arguments(node) -> list:
    args = node.child_by_field_name("arguments")
    if args is None or args.type == "template_string":      # tagged template
        return []
    return list(args.named_children)
