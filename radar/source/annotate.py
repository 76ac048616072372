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
from radar.source.match import MIN_SCORE

LogsFor = Callable[[dict], "list[str] | None"]
TEMPLATES_NAME = "templates.tsv"       # what `radar ingest` writes beside the day files


def annotate_from_config(records: Iterable[dict], section, *,
                         data_dir: str | Path | None = None,
                         cache_dir: str | Path | None = None) -> Iterable[dict]:
    """The one call ``radar run``/``detect`` make on their result records: unchanged when
    ``section.index`` (the config's ``source`` section) is unset, else annotated through
    the templates file (``section.templates``, else ``DATA_DIR/templates.tsv`` when there
    is one) and the day files' original log lines."""
    if not section.index:
        return records
    templates = section.templates
    if templates is None and data_dir is not None and (Path(data_dir) / TEMPLATES_NAME).is_file():
        templates = Path(data_dir) / TEMPLATES_NAME
    linker = load_linker(section.index, templates, line_format=section.line_format,
                         min_score=section.min_score)
    logs_for = day_file_logs(data_dir, cache_dir) if data_dir is not None else None
    return annotate_explanations(records, linker, logs_for=logs_for)


def day_file_logs(data_dir: str | Path, cache_dir: str | Path | None = None) -> LogsFor:
    """``logs_for`` reading a record's original_logs from its day file in ``data_dir``
    (one record read through the prepared cache's offsets when there is one)."""
    from radar.data.logs import original_logs

    def logs_for(record: dict) -> list[str] | None:
        key = (record["file"], int(record["session_id"]))
        return original_logs(data_dir, {key[0]: {key[1]}}, cache_dir=cache_dir).get(key)
    return logs_for


def load_linker(index_path: str | Path, templates_path: str | Path | None = None, *,
                line_format: str | None = None, min_score: float = MIN_SCORE) -> SourceLinker:
    """A linker over the index at ``index_path``, with the event templates of
    ``templates_path`` (``radar ingest``'s templates.tsv) when given."""
    templates = read_templates(templates_path) if templates_path else None
    return SourceLinker(SourceIndex.load(index_path), templates, min_score=min_score,
                        line_format=line_format)


def run_linker(config) -> SourceLinker | None:
    """A trained run's source linker when its config names a source index (templates from
    ``source.templates`` or the training data's templates.tsv), else None. In-memory
    sessions carry no day files, so their events link through their templates only."""
    if not config.source.index:
        return None
    templates = config.source.templates
    default = Path(config.data.preprocessed_dir) / TEMPLATES_NAME
    if templates is None and default.is_file():
        templates = default
    return load_linker(config.source.index, templates, line_format=config.source.line_format,
                       min_score=config.source.min_score)


def annotate_explanations(records: Iterable[dict], linker: SourceLinker, *,
                          logs_for: LogsFor | None = None, code_for_flagged: bool = True
                          ) -> Iterator[dict]:
    """Yield each record with ``source`` on each explained event (records are changed in
    place). ``logs_for(record)`` gives a session's original log lines; it is asked only
    for flagged records with an event the templates do not cover or do not link, since
    it reads the day file."""
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
            if (link is None or link.statement is None) and flagged and logs_for is not None:
                if not asked:
                    lines, asked = logs_for(record), True
                position = item.get("position")
                if lines and position is not None and 0 <= position < len(lines):
                    by_line = linker.link_line(lines[position])     # the line itself
                    link = by_line if link is None or by_line.statement else link
            if link is None:
                continue
            item["source"] = source_of(link)
            if flagged and code_for_flagged and link.statement is not None:
                item["source"]["code"] = linker.index.code_lines(link.statement)
        yield record
