"""Python logging statements: ``logging`` and logger objects (lazy ``%`` arguments),
``logger.log(level, ...)``, ``print``; messages from f-strings, ``%``-formatting,
``str.format``, concatenation and conditionals."""

from __future__ import annotations

import re

from radar.source.extract import FileExtractor, is_logger_name, level_of, string_parts, text_of
from radar.source.templates import SLOT, Parts

# Translation functions whose result is their text: gettext's _(), oslo's _LI()/_LW()/_LE().
_TRANSLATION = re.compile(r"^(?:_\w{0,3}|gettext|ugettext|lazy_gettext|gettext_lazy)$")


class PythonExtractor(FileExtractor):
    call_types = frozenset({"call"})
    declaration_types = frozenset({"assignment"})
    function_types = frozenset({"function_definition", "lambda"})
    class_types = frozenset({"class_definition"})

    def function_name(self, node) -> str | None:
        return None if node.type == "lambda" else super().function_name(node)

    def callee(self, node):
        function = node.child_by_field_name("function")
        if function.type == "identifier":
            return text_of(function, self.source), None
        if function.type == "attribute":
            return (text_of(function.child_by_field_name("attribute"), self.source),
                    text_of(function.child_by_field_name("object"), self.source).rsplit(".")[-1])
        return None

    def call_arguments(self, node) -> list:
        return [a for a in _arguments(node) if a.type not in ("keyword_argument",
                                                               "dictionary_splat")]

    def parameters_of(self, function) -> list[str]:
        parameters = function.child_by_field_name("parameters")
        names = []
        for parameter in parameters.named_children if parameters is not None else []:
            if parameter.type == "identifier":
                names.append(text_of(parameter, self.source))
            elif parameter.type in ("typed_parameter", "default_parameter",
                                    "typed_default_parameter"):
                name = parameter.child_by_field_name("name") or parameter.named_children[0]
                names.append(text_of(name, self.source))
        if names and names[0] in ("self", "cls"):
            names = names[1:]           # callers pass obj.method(a): a is the first
        return names

    def log_call(self, node):
        function = node.child_by_field_name("function")
        args = [a for a in _arguments(node) if a.type not in ("keyword_argument",
                                                                "dictionary_splat")]
        if function.type == "identifier":
            name = text_of(function, self.source)
            wrapper, level = self.options.wrapper_level(name)
            if wrapper:
                return level, None, args, "printf"
            if name == "print":
                return None, None, args, None
            return None
        if function.type != "attribute":
            return None
        name = text_of(function.child_by_field_name("attribute"), self.source)
        receiver = function.child_by_field_name("object")
        receiver_text = text_of(receiver, self.source)
        wrapper, level = self.options.wrapper_level(name)
        if wrapper:
            return level, receiver_text, args, "printf"
        if not is_logger_name(receiver_text.rsplit(".", 1)[-1], self.options):
            return None
        if name == "log" and args:
            level = level_of(text_of(args[0], self.source).rsplit(".", 1)[-1].strip("'\""))
            return level, receiver_text, args[1:], "printf"
        level = level_of(name)
        return (level, receiver_text, args, "printf") if level else None

    def message_parts(self, args, style):
        if not args:
            return []
        index, parts = self.pick_message(args)
        if style is None:      # print(a, b): arguments joined by spaces
            for arg in args[index + 1:]:
                parts = parts + [" "] + self.expression_parts(arg)
            return parts
        return self.fill(parts, len(args) - index - 1, style)

    def declarations_of(self, node):
        if node.type != "assignment":
            return []
        left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
        if left is None or right is None or left.type not in ("identifier", "attribute"):
            return []
        name = text_of(left, self.source).rsplit(".", 1)[-1]
        return [(name, right, name.isupper())]

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind == "string":
            return string_parts(node, self.source, lambda child: [SLOT])
        if kind == "concatenated_string":
            return [p for child in node.named_children for p in self.expression_parts(child)]
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[0])
        if kind == "binary_operator":
            operator = node.child_by_field_name("operator").type
            left = self.expression_parts(node.child_by_field_name("left"))
            if operator == "+":
                return left + self.expression_parts(node.child_by_field_name("right"))
            if operator == "%":
                return [{"fmt": "printf", "parts": left}]
            return [SLOT]
        if kind == "conditional_expression":
            branches = node.named_children
            return [{"alts": [self.expression_parts(branches[0]),
                              self.expression_parts(branches[2])]}]
        if kind == "identifier":
            return self.name_parts(text_of(node, self.source))
        if kind == "attribute":
            return self.name_parts(text_of(node.child_by_field_name("attribute"), self.source))
        if kind == "call":
            return self._call_parts(node)
        return [SLOT]

    def _call_parts(self, node) -> Parts:
        function = node.child_by_field_name("function")
        args = _arguments(node)
        if function.type == "identifier" and _TRANSLATION.match(text_of(function, self.source)) \
                and len(args) == 1:
            return self.expression_parts(args[0])       # _("text"), _LW("text"): gettext
        if function.type == "attribute":
            name = text_of(function.child_by_field_name("attribute"), self.source)
            receiver = function.child_by_field_name("object")
            if name == "format":
                return [{"fmt": "brace", "parts": self.expression_parts(receiver)}]
            if name == "join" and receiver.type == "string":
                return [SLOT]
        return [SLOT]


def _arguments(node) -> list:
    args = node.child_by_field_name("arguments")
    if args is None:
        return []
    if args.type == "generator_expression":
        return [args]
    return list(args.named_children)
