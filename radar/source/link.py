"""Linking, ready to use: a loaded index, template files, raw-line contents, cached links.

:class:`SourceIndex` is the index file in memory (one flat list of statements, the
indirect ones included); :class:`SourceLinker` answers "which statement printed this
template / this line" with a cache, so a results file with millions of sessions costs
one match per distinct template or line shape.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

from radar.errors import RadarError
from radar.source.extract import level_of
from radar.source.index import read_index
from radar.source.match import MIN_SCORE, Link, Matcher
from radar.source.templates import display

_DIGITS = re.compile(r"\d+")
CACHE_LIMIT = 200_000
CODE_CONTEXT = 2            # lines shown before and after a statement
MAX_CODE_LINES = 14


@dataclasses.dataclass
class SourceIndex:
    path: Path
    roots: list[str]
    statements: list[dict]

    @classmethod
    def load(cls, path: str | Path) -> SourceIndex:
        header, entries = read_index(path)
        statements = []
        for entry in entries:
            where = {"root": entry["root"], "file": entry["file"], "language": entry["language"]}
            statements.extend(dict(statement, **where) for statement in entry["statements"])
            statements.extend(dict(statement, **where) for statement in entry["indirect"])
        return cls(Path(path), header["roots"], statements)

    def code_lines(self, statement: dict, context: int = CODE_CONTEXT) -> list[dict] | None:
        """The statement's source lines with ``context`` lines around, numbered; None when
        the file is no longer where it was indexed."""
        path = Path(self.roots[statement["root"]]) / statement["file"]
        first = max(1, statement["line"] - context)
        last = min(statement["end_line"] + context, first + MAX_CODE_LINES - 1)
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                lines = [(number, text.rstrip("\n")) for number, text in enumerate(handle, 1)
                         if first <= number <= last]
        except OSError:
            return None
        return [{"line": number, "text": text,
                 "focus": statement["line"] <= number <= statement["end_line"]}
                for number, text in lines]


def read_templates(path: str | Path) -> dict[str, str]:
    """``event_id -> template`` from a ``templates.tsv`` (``event_id<TAB>template`` as
    ``radar ingest`` writes it; with a header naming a ``template`` column, that column, as
    in ``radar synth``'s ``event_id<TAB>service<TAB>template``) or LogHub's
    ``*_templates.csv`` (``EventId,EventTemplate``)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                rows = csv.DictReader(handle)
                if not {"EventId", "EventTemplate"} <= set(rows.fieldnames or ()):
                    raise RadarError(f"{path}: a CSV template file needs the columns EventId "
                                     "and EventTemplate (LogHub's *_templates.csv)")
                return {row["EventId"]: row["EventTemplate"] for row in rows}
            out = {}
            column = None       # the template's column when a header names it
            for number, line in enumerate(handle, 1):
                line = line.rstrip("\n")
                if number == 1 and line.startswith("event_id\t"):
                    names = line.split("\t")
                    if "template" not in names:
                        raise RadarError(f"{path}, line 1: the header names no `template` "
                                         "column (expected event_id<TAB>...template)")
                    column = names.index("template")
                    continue
                if not line:
                    continue
                if column is None:
                    event_id, tab, template = line.partition("\t")
                else:
                    fields = line.split("\t", column)
                    tab = "\t" if len(fields) > column else ""
                    event_id, template = fields[0], fields[-1]
                if not tab:
                    raise RadarError(f"{path}, line {number}: expected event_id<TAB>template "
                                     "(as `radar ingest` writes templates.tsv)")
                out[event_id] = template
            return out
    except FileNotFoundError:
        raise RadarError(f"{path}: no such template file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RadarError(f"{path}: cannot read the template file ({exc})") from None


# Any other header: whatever comes before a level word near the start, then up to two
# thread or logger fields: "[main]", "[pool-1[x]/y@774]", a logger glued to its colon
# ("INFO:root:msg") or dotted ("WARN c.a.Pool: msg", "ERROR o.a.C.[Tomcat] - msg",
# "INFO nova.compute.manager [req-1 - -] msg").
GENERIC_HEADER = (r"(?:.{0,80}?[\s\[(|:,-])?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARNING|WARN|"
                  r"ERROR|ERR|FATAL|CRITICAL|SEVERE)(?![A-Za-z])[\])|:]*\s*(?:-\s+)?"
                  r"(?:(?:\[(?:[^\[\]]|\[[^\]]*\])*\]|[\w$/-]+:(?=\S)"
                  r"|[\w$/-]+(?:\.[\w$/\[\]-]+)+(?=:\s|\s+-\s|\s+\[))\s*[:-]?\s*){0,2}"
                  r"(?P<content>.*)")


class LineReader:
    """The message part and level of a raw log line: by ``pattern`` (a regex with a
    ``content`` group and maybe ``level``), else by the ``radar ingest`` presets of
    known log types, else by :data:`GENERIC_HEADER`, else the whole line."""

    def __init__(self, pattern: str | None = None):
        from radar.ingest.formats import PRESETS, compile_regex

        self.formats = ([compile_regex(pattern, "--format")] if pattern
                        else [PRESETS[name].regex for name in ("hdfs", "bgl")]
                        + [re.compile(GENERIC_HEADER, re.DOTALL)])
        if pattern and "content" not in self.formats[0].groupindex:
            raise RadarError("--format needs a named group 'content' (the message)")

    def read(self, line: str) -> tuple[str, str | None]:
        line = line.rstrip("\r\n")
        for regex in self.formats:
            found = regex.fullmatch(line)
            if found:
                level = found.groupdict().get("level")
                return found.group("content"), level_of(level) if level else None
        return line, None


class SourceLinker:
    """Cached links from event templates and raw lines to an index's statements."""

    def __init__(self, index: SourceIndex, templates: dict[str, str] | None = None,
                 min_score: float = MIN_SCORE, line_format: str | None = None):
        self.index = index
        self.templates = templates or {}
        self.matcher = Matcher(index.statements, min_score=min_score)
        self.lines = LineReader(line_format)
        self._cache: dict[tuple[str, str], Link] = {}

    def link_template(self, text: str) -> Link:
        return self._cached(("t", text), lambda: self.matcher.link_template(text))

    def link_event(self, event_id) -> Link | None:
        """The link of an event id through the templates file; None when it has no template."""
        text = self.templates.get(str(event_id))
        return None if text is None else self.link_template(text)

    def link_line(self, line: str) -> Link:
        content, level = self.lines.read(line)
        # Lines that differ only in their numbers are the same shape: one match for all.
        key = ("l", f"{level}\t{_DIGITS.sub('0', content)}")
        return self._cached(key, lambda: self.matcher.link_line(content, level))

    def _cached(self, key, compute) -> Link:
        link = self._cache.get(key)
        if link is None:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            link = self._cache[key] = compute()
        return link


def source_of(link: Link) -> dict | None:
    """The ``source`` of an explained event: where the linked statement is, or None."""
    statement = link.statement
    if statement is None:
        return None
    out = {"file": statement["file"], "line": statement["line"],
           "function": statement["function"], "class": statement["class"],
           "level": statement["level"], "statement": statement["statement"],
           "template": display(link.template), "score": link.score}
    if "logged_at" in statement:
        out["logged_at"] = {"file": statement["logged_at"]["file"],
                            "line": statement["logged_at"]["line"]}
    return out
