"""Which files are source code, in which language, and the tree-sitter grammar of each.

The grammars come from PyPI wheels (the ``source`` extra: ``tree-sitter``,
``tree-sitter-java``, ``-python``, ``-go``, ``-javascript``, ``-typescript``, ``-scala``, ``-c``);
they are imported only when a file of their language is indexed.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from radar.errors import RadarError
from radar.source.extract import ExtractOptions, FileExtractor
from radar.source.lang_c import CExtractor
from radar.source.lang_go import GoExtractor
from radar.source.lang_java import JavaExtractor
from radar.source.lang_js import JavaScriptExtractor
from radar.source.lang_python import PythonExtractor
from radar.source.lang_scala import ScalaExtractor

# extension -> (language name, extractor, grammar module, function returning the grammar)
LANGUAGES = {
    ".java": ("java", JavaExtractor, "tree_sitter_java", "language"),
    ".py": ("python", PythonExtractor, "tree_sitter_python", "language"),
    ".go": ("go", GoExtractor, "tree_sitter_go", "language"),
    ".js": ("javascript", JavaScriptExtractor, "tree_sitter_javascript", "language"),
    ".mjs": ("javascript", JavaScriptExtractor, "tree_sitter_javascript", "language"),
    ".cjs": ("javascript", JavaScriptExtractor, "tree_sitter_javascript", "language"),
    ".jsx": ("javascript", JavaScriptExtractor, "tree_sitter_javascript", "language"),
    ".ts": ("typescript", JavaScriptExtractor, "tree_sitter_typescript", "language_typescript"),
    ".tsx": ("tsx", JavaScriptExtractor, "tree_sitter_typescript", "language_tsx"),
    ".scala": ("scala", ScalaExtractor, "tree_sitter_scala", "language"),
    ".c": ("c", CExtractor, "tree_sitter_c", "language"),
    ".h": ("c", CExtractor, "tree_sitter_c", "language"),
}
INSTALL_HINT = "install the source extra: pip install 'radar-logs[source]'"


def language_of(path: str | Path) -> str | None:
    entry = LANGUAGES.get(Path(path).suffix.lower())
    return entry[0] if entry else None


@functools.cache
def _parser(suffix: str):
    _, _, module_name, function = LANGUAGES[suffix]
    try:
        from tree_sitter import Language, Parser

        grammar = getattr(importlib.import_module(module_name), function)()
    except ImportError as exc:
        raise RadarError(f"cannot parse {suffix} files: {exc.name or exc} is not installed; "
                         f"{INSTALL_HINT}") from None
    return Parser(Language(grammar))


def can_parse(suffix: str) -> bool:
    """Whether files with ``suffix`` can be parsed here (tree-sitter and the grammar are
    installed)."""
    try:
        _parser(suffix)
    except RadarError:
        return False
    return True


def extract_file(path: Path, source: bytes, options: ExtractOptions
                 ) -> tuple[list, list, list]:
    """(statements, definitions, call sites passing text) of one source file."""
    suffix = path.suffix.lower()
    _, extractor_class, _, _ = LANGUAGES[suffix]
    tree = _parser(suffix).parse(source)
    extractor: FileExtractor = extractor_class(source, options)
    return extractor.run(tree)
