"""Result records with the code behind their most surprising events.

:func:`annotate_explanations` is a pure function over result-record dicts (the records
``radar run``, ``detect`` and ``serve`` write): every item of a record's
``top_positions`` that stands for an event gains ``source`` — ``{file, line, function,
class, level, statement, template, score}``, ``None`` when no statement fits — and, in
flagged records, ``code``: the numbered source lines around the statement, so reports
can show them without the source tree. The event's text comes from the templates file
(by ``event_id``) or else from the session's original log line at that position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from radar.source.link import SourceIndex, SourceLinker, read_templates, source_of

LogsFor = Callable[[dict], "list[str] | None"]


def load_linker(index_path: str | Path, templates_path: str | Path | None = None, *,
                line_format: str | None = None) -> SourceLinker:
    """A linker over the index at ``index_path``, with the event templates of
    ``templates_path`` (``radar ingest``'s templates.tsv) when given."""
    templates = read_templates(templates_path) if templates_path else None
    return SourceLinker(SourceIndex.load(index_path), templates, line_format=line_format)


def annotate_explanations(records: Iterable[dict], linker: SourceLinker, *,
                          logs_for: LogsFor | None = None, code_for_flagged: bool = True
                          ) -> Iterator[dict]:
    """Yield each record with ``source`` on each explained event (records are changed in
    place). ``logs_for(record)`` gives a session's original log lines; it is asked only
    for flagged records with an event the templates do not cover, since it reads the
    day file."""
    for record in records:
        positions = record.get("top_positions") or []
        flagged = bool(record.get("is_anomaly"))
        lines: list[str] | None = None
        asked = False
        for item in positions:
            if item.get("kind") == "end":
                continue        # the session stopped early: no line printed it
            link = linker.link_event(item["event_id"]) if item.get("event_id") is not None \
                else None
            if link is None and flagged and logs_for is not None:
                if not asked:
                    lines, asked = logs_for(record), True
                position = item.get("position")
                if lines and position is not None and 0 <= position < len(lines):
                    link = linker.link_line(lines[position])
            if link is None:
                continue
            item["source"] = source_of(link)
            if flagged and code_for_flagged and link.statement is not None:
                item["source"]["code"] = linker.index.code_lines(link.statement)
        yield record
