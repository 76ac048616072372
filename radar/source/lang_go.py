"""Go logging statements: ``log``, ``fmt.Print*`` / ``Fprint*``, logrus, zap (plain and
sugared), slog, klog/glog and logger values; ``Printf`` verbs, ``Println`` spacing,
``fmt.Sprintf`` and concatenation."""

from __future__ import annotations

from radar.source.extract import FileExtractor, is_logger_name, level_of, string_parts, text_of
from radar.source.templates import SLOT, Parts

# Packages whose functions log, beside receivers named like a logger.
_LOG_PACKAGES = frozenset({"log", "slog", "klog", "glog", "logrus", "zap", "zerolog"})
_PRINTS = frozenset({"Print", "Printf", "Println", "Fatal", "Fatalf", "Fatalln",
                     "Panic", "Panicf", "Panicln"})


class GoExtractor(FileExtractor):
    call_types = frozenset({"call_expression"})
    declaration_types = frozenset({"const_spec", "var_spec", "short_var_declaration",
                                   "assignment_statement"})
    function_types = frozenset({"function_declaration", "method_declaration", "func_literal"})
    class_types = frozenset({"method_declaration"})

    def function_name(self, node) -> str | None:
        return None if node.type == "func_literal" else super().function_name(node)

    def class_name(self, node) -> str | None:
        receiver = node.child_by_field_name("receiver")
        if receiver is None:
            return None
        text = text_of(receiver, self.source).strip("()").split()
        return text[-1].lstrip("*") if text else None

    def callee(self, node):
        function = node.child_by_field_name("function")
        if function.type == "identifier":
            return text_of(function, self.source), None
        if function.type == "selector_expression":
            return (text_of(function.child_by_field_name("field"), self.source),
                    text_of(function.child_by_field_name("operand"), self.source).rsplit(".")[-1])
        return None

    def parameters_of(self, function) -> list[str]:
        parameters = function.child_by_field_name("parameters")
        names = []
        for declaration in parameters.named_children if parameters is not None else []:
            names.extend(text_of(n, self.source) for n in declaration.children_by_field_name("name"))
        return names

    def log_call(self, node):
        function = node.child_by_field_name("function")
        args = _arguments(node)
        if function.type == "identifier":
            wrapper, level = self.options.wrapper_level(text_of(function, self.source))
            return (level, None, args, "printf") if wrapper else None
        if function.type != "selector_expression":
            return None
        name = text_of(function.child_by_field_name("field"), self.source)
        receiver_text = text_of(function.child_by_field_name("operand"), self.source)
        wrapper, level = self.options.wrapper_level(name)
        if wrapper:
            return level, receiver_text, args, "printf"
        owner = receiver_text.rsplit(".", 1)[-1]
        if receiver_text == "fmt":
            if name.startswith("Fprint") and args:
                return None, receiver_text, args[1:], _style(name)
            return (None, receiver_text, args, _style(name)) if name in _PRINTS else None
        if owner not in _LOG_PACKAGES and not is_logger_name(owner, self.options):
            return None
        if name in _PRINTS:
            level = "fatal" if name.startswith(("Fatal", "Panic")) else None
            return level, receiver_text, args, _style(name)
        level = level_of(name)
        return (level, receiver_text, args, _style(name)) if level else None

    def message_parts(self, args, style):
        if not args:
            return []
        index, parts = self.pick_message(args)
        if style == "spaced":      # Println: every operand, separated by spaces
            for arg in args[index + 1:]:
                parts = parts + [" "] + self.expression_parts(arg)
            return parts
        return self.fill(parts, len(args) - index - 1, style)

    def declarations_of(self, node):
        if node.type in ("const_spec", "var_spec"):
            names = node.children_by_field_name("name")
            value = node.child_by_field_name("value")
            values = value.named_children if value is not None else []
            return [(text_of(n, self.source), v, node.type == "const_spec")
                    for n, v in zip(names, values)]
        if node.type in ("short_var_declaration", "assignment_statement"):
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            if left is None or right is None:
                return []
            return [(text_of(n, self.source).rsplit(".", 1)[-1], v, False)
                    for n, v in zip(left.named_children, right.named_children)]
        return []

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind in ("interpreted_string_literal", "raw_string_literal"):
            return string_parts(node, self.source, lambda child: [SLOT])
        if kind == "rune_literal":
            return [text_of(node, self.source)[1:-1]]
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[0])
        if kind == "binary_expression" and node.child_by_field_name("operator").type == "+":
            return (self.expression_parts(node.child_by_field_name("left"))
                    + self.expression_parts(node.child_by_field_name("right")))
        if kind == "identifier":
            return self.name_parts(text_of(node, self.source))
        if kind == "selector_expression":
            return self.name_parts(text_of(node.child_by_field_name("field"), self.source))
        if kind == "call_expression":
            function = node.child_by_field_name("function")
            args = _arguments(node)
            if function.type == "selector_expression" and args and text_of(
                    function, self.source) in ("fmt.Sprintf", "fmt.Errorf"):
                return [{"fmt": "printf", "parts": self.expression_parts(args[0])}]
        return [SLOT]


def _style(name: str) -> str | None:
    if name.endswith("f"):
        return "printf"
    if name.endswith("ln"):
        return "spaced"
    return None


def _arguments(node) -> list:
    args = node.child_by_field_name("arguments")
    return list(args.named_children) if args is not None else []
