"""``radar ingest``: raw log lines into RADAR day files, streaming.

Each line is matched by the format's regex, its message mined into a Drain3 template
(the event id), its time parsed; lines are grouped into sessions by a key or a time
window; closed sessions stream into ``preprocessed_logs_YYYY-MM-DD.json`` files.
Beside them: ``templates.tsv``, the template state (``drain_state.json``) that keeps
event ids stable across runs, and ``labels.csv`` when the format has a ``label`` group.
Bad lines are counted and a few reported, never fatal.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from radar.deadline import LineDeadline
from radar.errors import RadarError
from radar.ingest.formats import (
    ERROR_LEVELS,
    NORMAL_LABELS,
    PRESETS,
    WARN_LEVELS,
    LineFormat,
    TimeParser,
    compile_regex,
    custom_format,
)
from radar.ingest.grouping import GROUP_BY, GroupingSpec, LogLine, make_grouper
from radar.ingest.inputs import (
    MAX_BAD_EXAMPLES,
    BadLine,
    DamagedInput,
    check_inputs,
    iter_lines,
    snippet,
)
from radar.ingest.templates import TemplateStore, require_drain3
from radar.ingest.writer import LABELS_NAME, DayWriter

__all__ = ["PRESETS", "IngestOptions", "IngestSummary", "ingest"]

STATE_NAME, TEMPLATES_NAME = "drain_state.json", "templates.tsv"
_GIVE_UP_AFTER = 1000       # bad lines in a row at the start of a file: the wrong format


@dataclasses.dataclass
class IngestOptions:
    """What ``radar ingest`` was asked for; None means "the preset's default"."""

    preset: str = "generic"
    line_format: str | None = None
    group_by: str | None = None
    key_regex: str | None = None
    key_group: str | None = None
    window: int | None = None
    step: int | None = None
    service: str | None = None
    state: Path | None = None
    sim_th: float | None = None
    depth: int | None = None
    max_session_lines: int = 200
    session_timeout: float | None = None
    max_open_sessions: int = 100_000
    append: bool = False


@dataclasses.dataclass
class IngestSummary:
    """What an ingest read and wrote."""

    out_dir: Path
    format_name: str
    grouping: str
    lines_read: int = 0
    lines_parsed: int = 0
    bad_lines: int = 0
    bad_examples: list[BadLine] = dataclasses.field(default_factory=list)
    damaged_inputs: list[str] = dataclasses.field(default_factory=list)
    lines_without_key: int = 0
    sessions: int = 0
    day_files: dict[str, int] = dataclasses.field(default_factory=dict)   # path: sessions
    replaced_files: list[str] = dataclasses.field(default_factory=list)
    templates: int = 0
    new_templates: int = 0
    sessions_closed_early: int = 0
    duplicate_windows: int = 0
    logs_truncated: int = 0
    state_path: Path | None = None
    templates_path: Path | None = None
    labels_path: Path | None = None
    seconds: float = 0.0

    def add_bad(self, bad: BadLine) -> None:
        self.bad_lines += 1
        if len(self.bad_examples) < MAX_BAD_EXAMPLES:
            self.bad_examples.append(bad)


@dataclasses.dataclass
class _Plan:
    """Options resolved against the preset: everything the line loop needs."""

    fmt: LineFormat
    spec: GroupingSpec
    keys: Callable | None           # (match, content) -> keys; None for windows
    service: str
    format_text: str                # "the hdfs format" or "--format"


def resolve(options: IngestOptions) -> _Plan:
    """Check the options and fill in the preset's defaults (RadarError naming the option)."""
    if options.preset not in PRESETS:
        raise RadarError(f"unknown preset {options.preset!r}; available: "
                         f"{', '.join(sorted(PRESETS))}")
    fmt = PRESETS[options.preset]
    if options.line_format is not None:
        fmt = custom_format(fmt, options.line_format)
    keyed = options.key_regex is not None or options.key_group is not None
    group_by = options.group_by or ("key" if keyed else fmt.group_by)
    if group_by not in GROUP_BY:
        raise RadarError(f"unknown --group-by {group_by!r}; choose one of {', '.join(GROUP_BY)}")
    if group_by != "key" and keyed:
        raise RadarError("--key-regex/--key-group group by key; drop them or use --group-by key")
    window = options.window or fmt.window
    step = options.step or fmt.step or max(1, window // 5)
    if options.step is not None and group_by != "sliding":
        raise RadarError("--step only applies to --group-by sliding")
    if options.session_timeout is not None and group_by != "key":
        raise RadarError("--session-timeout only applies to --group-by key (windows close "
                         "by themselves)")
    if group_by == "sliding" and step > window:
        raise RadarError(f"--step {step} is longer than --window {window}; sliding windows "
                         "would skip lines (use --group-by window for back-to-back windows)")
    spec = GroupingSpec(group_by=group_by, window=window, step=step,
                        timeout=options.session_timeout, max_open=options.max_open_sessions,
                        max_lines=options.max_session_lines)
    keys = _key_function(fmt, options) if group_by == "key" else None
    format_text = "--format" if options.line_format else f"the {fmt.name} format"
    return _Plan(fmt, spec, keys, options.service or fmt.name, format_text)


def _key_function(fmt: LineFormat, options: IngestOptions) -> Callable:
    if options.key_group is not None:
        name = options.key_group
        if name not in fmt.groups:
            raise RadarError(f"--key-group {name!r} is not a named group of the line format; "
                             f"its groups: {', '.join(sorted(fmt.groups))}")
        return lambda match, content: (match[name],) if match[name] else ()
    pattern = options.key_regex or fmt.key_regex
    if pattern is None:
        raise RadarError("--group-by key needs --key-regex REGEX (searched in each message) "
                         "or --key-group NAME (a named group of the format)")
    regex = compile_regex(pattern, "--key-regex")
    group = "key" if "key" in regex.groupindex else (1 if regex.groups == 1 else 0)
    if group == 0:
        # findall gives whole matches without groups; dict.fromkeys drops repeats in order
        return lambda match, content: dict.fromkeys(regex.findall(content))
    return lambda match, content: dict.fromkeys(
        found[group] for found in regex.finditer(content) if found[group])


def _describe(spec: GroupingSpec, fmt: LineFormat, options: IngestOptions) -> str:
    if spec.group_by == "key":
        how = (f"group {options.key_group!r}" if options.key_group
               else f"regex {options.key_regex or fmt.key_regex}")
        return f"key ({how})"
    if spec.group_by == "window":
        return f"fixed {spec.window} s windows"
    return f"sliding {spec.window} s windows every {spec.step} s"


def ingest(logs: list[str | Path], out_dir: str | Path, options: IngestOptions | None = None,
           progress: Callable[[int, int], None] | None = None) -> IngestSummary:
    """Ingest raw log files (in order) into day files under ``out_dir``.

    ``progress(bytes_done, bytes_total)`` is called as the input is read.
    """
    started = time.perf_counter()
    options = options or IngestOptions()
    require_drain3()
    plan = resolve(options)
    paths = [Path(log) for log in logs]
    check_inputs(paths)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RadarError(f"cannot create the output folder {out} ({exc.strerror or exc}); "
                         "pass a writable --out folder") from None
    state_path = Path(options.state) if options.state else out / STATE_NAME
    store = TemplateStore.open(state_path, sim_th=options.sim_th, depth=options.depth,
                               default_sim_th=plan.fmt.sim_th, default_depth=plan.fmt.depth)
    summary = IngestSummary(out, plan.fmt.name, _describe(plan.spec, plan.fmt, options),
                            state_path=state_path, templates_path=out / TEMPLATES_NAME)
    with_labels = "label" in plan.fmt.groups
    writer = DayWriter(out, service=plan.service, append=options.append,
                       with_labels=with_labels)
    with writer, LineDeadline() as deadline:
        _Reader(plan, store, writer, summary, deadline).read_all(paths, progress)
        store.save(state_path)
        store.write_table(out / TEMPLATES_NAME)
    summary.sessions = writer.n_sessions
    summary.day_files = {str(day.path): day.next_id - day.first_new_id
                         for _, day in sorted(writer.days.items())}
    summary.replaced_files = [str(path) for path in writer.replaced]
    summary.templates, summary.new_templates = store.n_templates, store.n_templates - store.n_loaded
    summary.labels_path = out / LABELS_NAME if with_labels else None
    summary.seconds = time.perf_counter() - started
    return summary


class _Reader:
    """The line loop: parse, mine, group, write."""

    def __init__(self, plan: _Plan, store: TemplateStore, writer: DayWriter,
                 summary: IngestSummary, deadline: LineDeadline):
        self.plan, self.store, self.writer, self.summary = plan, store, writer, summary
        self.deadline = deadline
        self.grouper = make_grouper(plan.spec)
        self.times = TimeParser(plan.fmt.groups)
        self.match = plan.fmt.regex.match
        groups = plan.fmt.groups
        self.has_level, self.has_label = "level" in groups, "label" in groups
        self.has_service = "service" in groups
        self.number = 0

    def read_all(self, paths: list[Path], progress) -> None:
        total = sum(path.stat().st_size for path in paths)
        done = 0
        for path in paths:
            report = None if progress is None else (
                lambda n, base=done: progress(base + n, total))
            self._read_file(path, report)
            done += path.stat().st_size
        for session in self.grouper.finish():
            self._write(session)
        self.summary.sessions_closed_early = getattr(self.grouper, "n_closed_early", 0)
        self.summary.duplicate_windows = getattr(self.grouper, "n_duplicates", 0)
        if self.writer.n_sessions == 0:
            raise RadarError(self._no_sessions_message())

    def _read_file(self, path: Path, progress) -> None:
        summary, before = self.summary, self.summary.lines_parsed
        n_lines = n_bad = 0
        deadline = self.deadline
        deadline.path = str(path)
        try:
            for number, text in iter_lines(path, progress):
                deadline.number = number
                n_lines += 1
                problem = self._read_line(text)
                if problem is not None:
                    n_bad += 1
                    summary.add_bad(BadLine(str(path), number, problem, snippet(text)))
                    if n_bad >= _GIVE_UP_AFTER and summary.lines_parsed == before:
                        break
        except DamagedInput as damaged:
            summary.damaged_inputs.append(str(damaged))
        finally:
            deadline.path = ""
        summary.lines_read += n_lines
        if summary.lines_parsed == before:
            raise RadarError(self._wrong_format_message(path, n_lines))

    def _read_line(self, text: str) -> str | None:
        """Handle one line; the reason it is bad, or None."""
        plan = self.plan
        match = self.match(text)
        if match is None:
            return f"does not match {plan.format_text}"
        try:
            ts, day = self.times(match)
        except ValueError as exc:
            return str(exc)
        self.summary.lines_parsed += 1
        content = match["content"] or ""
        keys = None
        if plan.keys is not None:
            keys = plan.keys(match, content)
            if not keys:
                self.summary.lines_without_key += 1
                return None
        level = (match["level"] or "").upper() if self.has_level else ""
        alert = self.has_label and (match["label"] or "").strip().lower() not in NORMAL_LABELS
        service = (match["service"] or None) if self.has_service else None
        self.number += 1
        line = LogLine(self.number, ts, day, self.store.event_id(content), text,
                       level in ERROR_LEVELS, level in WARN_LEVELS, alert, service)
        for session in self.grouper.add(line, keys):
            self._write(session)
        return None

    def _write(self, session) -> None:
        if session.n_lines > len(session.logs):
            self.summary.logs_truncated += 1
        self.writer.write(session)

    def _wrong_format_message(self, path: Path, n_lines: int) -> str:
        if n_lines == 0:
            return f"{path} has no log lines; drop it from the inputs"
        first = next((bad for bad in self.summary.bad_examples if bad.file == str(path)), None)
        example = f" (first: line {first.line}: {first.reason}: {first.text!r})" if first else ""
        return (f"{path}: none of its lines could be read with {self.plan.format_text}"
                f"{example}; pick the right --preset ({', '.join(PRESETS)}) or "
                "describe the lines with --format REGEX (named groups: content, and "
                "timestamp or date/time)")

    def _no_sessions_message(self) -> str:
        return (f"{self.summary.lines_parsed:,} lines were parsed but none had a session key "
                f"(grouping by {self.summary.grouping} found nothing); pass --key-regex or --key-group to say what "
                "ties lines together, or group by time with --group-by window")

