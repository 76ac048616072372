"""C logging statements: functions and macros named after a level (``debug3``, ``logit``,
``verbose``, ``error_fr``, ``log_warn``, ``LOG_ERROR``...) or ending in ``log``
(``sshlog``, ``do_log2``), ``syslog(LOG_ERR, ...)``, ``printk``, ``printf``/``fprintf(stderr,
...)``; ``printf`` formats, adjacent string literals, ``__func__`` and ``#define`` text
constants."""

from __future__ import annotations

import re

from radar.source.extract import FileExtractor, level_of, string_parts, text_of
from radar.source.templates import SLOT, Parts

# A level word, maybe after "log_" and before a variant suffix ("_f", "_fr", "_r", "x").
_LEVEL_CALL = re.compile(r"^(?:log_?)?(?P<word>trace|debug\d?|info|notice|verbose|logit|warn|"
                         r"warning|error|err|fatal|crit|critical|panic|alert|emerg)"
                         r"(?:_[a-z]{1,3}|x)?$", re.IGNORECASE)
_PRINTS = {"printf": 0, "puts": 0, "printk": 0, "fprintf": 1, "fputs": 1, "dprintf": 1}
_SYSLOG = frozenset({"syslog", "vsyslog", "sd_journal_print"})
_LOG_FUNCTION = re.compile(r"log\d?$", re.IGNORECASE)     # sshlog, authlog, do_log2, vlog
_WORDS = {"logit": "info", "verbose": "info", "notice": "info"}


class CExtractor(FileExtractor):
    call_types = frozenset({"call_expression"})
    declaration_types = frozenset({"preproc_def", "init_declarator"})
    function_types = frozenset({"function_definition"})
    message_window = 8          # sshlog(__FILE__, __func__, __LINE__, 0, level, NULL, fmt...)

    def function_name(self, node) -> str | None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "identifier":
            declarator = declarator.child_by_field_name("declarator")
        return text_of(declarator, self.source) if declarator is not None else None

    def callee(self, node):
        function = node.child_by_field_name("function")
        return (text_of(function, self.source), None) if function.type == "identifier" else None

    def parameters_of(self, function) -> list[str]:
        declarator = function.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "function_declarator":
            declarator = declarator.child_by_field_name("declarator")
        parameters = declarator.child_by_field_name("parameters") if declarator else None
        names = []
        for parameter in parameters.named_children if parameters is not None else []:
            inner = parameter.child_by_field_name("declarator")
            while inner is not None and inner.type != "identifier":
                inner = inner.child_by_field_name("declarator")
            if inner is not None:
                names.append(text_of(inner, self.source))
        return names

    def log_call(self, node):
        function = node.child_by_field_name("function")
        if function.type != "identifier":
            return None
        name = text_of(function, self.source)
        args = self.call_arguments(node)
        wrapper, level = self.options.wrapper_level(name)
        if wrapper:
            return level, None, args, "printf"
        if name in _PRINTS:
            return None, None, args[_PRINTS[name]:], "printf"
        if name in _SYSLOG and args:
            level = level_of(text_of(args[0], self.source).rsplit("_", 1)[-1])
            return level, None, args[1:], "printf"
        found = _LEVEL_CALL.match(name)
        if found is None:
            # (file, line, level, fmt, ...): the message is the first text argument
            return (None, None, args, "printf") if _LOG_FUNCTION.search(name) else None
        word = found.group("word").lower().rstrip("0123456789")
        return _WORDS.get(word) or level_of(word), None, args, "printf"

    def message_parts(self, args, style):
        """printf-family formats are always formats (``%m``, ``%%``), arguments or not."""
        if not args:
            return []
        index, parts = self.pick_message(args)
        return [{"fmt": "printf", "parts": parts, "args": len(args) - index - 1}]

    def declarations_of(self, node):
        if node.type == "preproc_def":
            value = node.child_by_field_name("value")
            name = node.child_by_field_name("name")
            if value is None or '"' not in text_of(value, self.source):
                return []
            return [(text_of(name, self.source), value, True)]
        declarator, value = node.child_by_field_name("declarator"), node.child_by_field_name(
            "value")
        while declarator is not None and declarator.type != "identifier":
            declarator = declarator.child_by_field_name("declarator")
        if declarator is None or value is None:
            return []
        constant = "const" in text_of(node.parent, self.source).split("=")[0].split()
        return [(text_of(declarator, self.source), value, constant)]

    def expression_parts(self, node) -> Parts:
        kind = node.type
        if kind == "string_literal":
            return string_parts(node, self.source, lambda child: [SLOT])
        if kind == "concatenated_string":         # "a" MACRO "b"
            return [p for child in node.named_children for p in self.expression_parts(child)]
        if kind == "preproc_arg":                  # #define NAME "text"
            text = text_of(node, self.source).strip()
            return [text[1:-1]] if text.startswith('"') and text.endswith('"') else [SLOT]
        if kind == "parenthesized_expression":
            return self.expression_parts(node.named_children[0])
        if kind == "conditional_expression":
            return [{"alts": [self.expression_parts(node.child_by_field_name("consequence")),
                              self.expression_parts(node.child_by_field_name("alternative"))]}]
        if kind == "identifier":
            name = text_of(node, self.source)
            if name in ("__func__", "__FUNCTION__") and self._call is not None:
                function = self._enclosing_function(self._call)
                return [self.function_name(function) or SLOT] if function else [SLOT]
            return self.name_parts(name)
        return [SLOT]
