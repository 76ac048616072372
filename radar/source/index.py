"""The source index: every logging statement of the indexed folders, in one JSON Lines file.

Layout (written atomically): a header line ``{"format": "radar-source-index", "version",
"extractor", "roots", "options"}``, then one line per source file: ``root`` (index into
``roots``), ``file`` (path relative to that root), ``language``, ``size``, ``mtime_ns``,
``sha1``, ``statements`` (each: ``line``, ``end_line``, ``column``, ``function``,
``class``, ``level``, ``logger``, ``statement`` text, raw ``parts`` and the resolved
``templates``), ``definitions`` (named values holding text, for references from other
files), ``calls`` (calls passing text, for functions that log their parameter),
``indirect`` (messages written here and logged elsewhere: see resolve.py) and, when its
tree could not be read, ``error``.

Re-indexing reuses the entry of every file whose size and modification time (or, when
those changed, content hash) are unchanged; only the others are parsed. Names are then
resolved across all files again, which is cheap.

A file over ``max_file_bytes`` (default :data:`MAX_FILE_BYTES`) is not read: parsing
costs about 60 bytes of memory per byte of source (one 50 MB generated file took 2.9 GB
and 52 s), and such files are generated code or data, not where log statements live.
Its entry says ``skipped`` with no statements, and the summary lists it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from radar.errors import RadarError
from radar.fsutil import atomic_write
from radar.source.extract import ExtractOptions
from radar.source.languages import LANGUAGES, extract_file, language_of
from radar.source.resolve import resolve_entries

INDEX_FORMAT, INDEX_VERSION = "radar-source-index", 1
EXTRACTOR_VERSION = 2       # bump when extraction changes: every file is parsed again
MAX_FILE_BYTES = 10 * 1024 * 1024
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv",
                          "venv", ".tox", "build", "dist", "target", "vendor"})


@dataclasses.dataclass
class IndexSummary:
    path: Path
    files: int
    parsed: int
    reused: int
    statements: int
    indirect: int
    bytes_parsed: int
    seconds: float
    by_language: dict[str, int]
    failed: list[str]           # "file: error" of files whose statements could not be read
    skipped: list[str] = dataclasses.field(default_factory=list)  # "file (size)" over the limit


def source_files(roots: list[Path], exclude: tuple[str, ...] = ()) -> Iterator[tuple[int, str]]:
    """(root index, path relative to the root) of every source file, in a stable order."""
    for number, root in enumerate(roots):
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
            for name in sorted(files):
                if Path(name).suffix.lower() not in LANGUAGES:
                    continue
                relative = Path(directory, name).relative_to(root).as_posix()
                if any(fnmatch.fnmatch(relative, pattern) for pattern in exclude):
                    continue
                yield number, relative


def build_index(roots: list[str | Path], out: str | Path, options: ExtractOptions,
                exclude: tuple[str, ...] = (),
                progress: Callable[[int, int], None] | None = None,
                max_file_bytes: int = MAX_FILE_BYTES) -> IndexSummary:
    """Index the logging statements under ``roots`` into ``out`` (reusing what it holds)."""
    started = time.perf_counter()
    roots = [Path(root).resolve() for root in roots]
    for root in roots:
        if not root.is_dir():
            raise RadarError(f"{root}: not a folder; pass the folders holding the source code")
    out = Path(out)
    header = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "extractor": EXTRACTOR_VERSION,
              "roots": [str(root) for root in roots],
              "options": {"loggers": list(options.loggers), "wrappers": list(options.wrappers)}}
    previous = _reusable_entries(out, header)
    files = list(source_files(roots, exclude))
    entries, parsed, bytes_parsed = [], 0, 0
    for done, (number, relative) in enumerate(files, 1):
        path = roots[number] / relative
        entry, was_parsed = _entry(path, number, relative, previous.get((str(roots[number]),
                                                                         relative)), options,
                                   max_file_bytes)
        entries.append(entry)
        parsed += was_parsed
        bytes_parsed += entry["size"] if was_parsed else 0
        if progress:
            progress(done, len(files))
    resolve_entries(entries)
    with atomic_write(out, "w") as handle:
        handle.write(json.dumps(header) + "\n")
        for entry in entries:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    by_language: dict[str, int] = {}
    for entry in entries:
        by_language[entry["language"]] = (by_language.get(entry["language"], 0)
                                          + len(entry["statements"]))
    skipped = [f"{e['file']} ({e['size']:,} bytes)" for e in entries if e.get("skipped")]
    return IndexSummary(out, len(entries), parsed, len(entries) - parsed - len(skipped),
                        sum(len(e["statements"]) for e in entries),
                        sum(len(e["indirect"]) for e in entries), bytes_parsed,
                        time.perf_counter() - started, by_language,
                        [f"{e['file']}: {e['error']}" for e in entries if "error" in e],
                        skipped)


def _entry(path: Path, root: int, relative: str, old: dict | None, options: ExtractOptions,
           max_file_bytes: int = MAX_FILE_BYTES) -> tuple[dict, bool]:
    """The index entry of one file: the old one when the file is unchanged, else parsed
    (or, over ``max_file_bytes``, a ``skipped`` entry without reading it)."""
    try:
        stat = path.stat()
        if stat.st_size > max_file_bytes:
            return {"root": root, "file": relative, "language": language_of(path),
                    "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha1": None,
                    "skipped": True, "statements": [], "definitions": [], "calls": []}, False
        if (old is not None and not old.get("skipped") and old["size"] == stat.st_size
                and old["mtime_ns"] == stat.st_mtime_ns):
            return dict(old, root=root), False
        source = path.read_bytes()
    except OSError as exc:
        raise RadarError(f"{path}: cannot read ({exc.strerror}); fix its permissions or "
                         "--exclude it") from None
    digest = hashlib.sha1(source).hexdigest()
    if old is not None and old["sha1"] == digest:
        return dict(old, root=root, mtime_ns=stat.st_mtime_ns), False
    entry = {"root": root, "file": relative, "language": language_of(path),
             "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha1": digest}
    try:
        statements, definitions, calls = extract_file(path, source, options)
    except (AttributeError, TypeError, ValueError, IndexError, RecursionError) as exc:
        # A tree shape an extractor does not expect: the file is listed, never fatal.
        statements, definitions, calls = [], [], []
        entry["error"] = f"{type(exc).__name__}: {exc}"
    entry.update(statements=statements, definitions=definitions, calls=calls)
    return entry, True


def _reusable_entries(out: Path, header: dict) -> dict[tuple[str, str], dict]:
    """Entries of an earlier index at ``out`` made with the same extractor and options."""
    if not out.exists():
        return {}
    old_header, entries = read_index(out)
    if (old_header.get("extractor") != header["extractor"]
            or old_header.get("options") != header["options"]):
        return {}
    roots = old_header["roots"]
    return {(roots[entry["root"]], entry["file"]): entry for entry in entries}


def read_index(path: str | Path) -> tuple[dict, list[dict]]:
    """(header, file entries) of an index file; a damaged one names itself and the fix."""
    path = Path(path)
    entries = []
    try:
        with path.open(encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "{}")
            if header.get("format") != INDEX_FORMAT or header.get("version") != INDEX_VERSION:
                raise ValueError(f"not a {INDEX_FORMAT} version {INDEX_VERSION} file")
            for number, line in enumerate(handle, 2):
                if line.strip():
                    entries.append(json.loads(line))
    except FileNotFoundError:
        raise RadarError(f"{path}: no such source index; build it with "
                         "`radar source index SRC_DIR --out INDEX`") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise RadarError(f"{path}: not a readable source index ({exc}); build it again with "
                         "`radar source index SRC_DIR --out INDEX`") from None
    return header, entries
