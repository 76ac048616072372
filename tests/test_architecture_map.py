"""README's architecture map names every module and package of radar/, and nothing else.

The map is the fenced block under "## Architecture" that starts with the line
``radar/``; each entry is a line indented by exactly two spaces whose first word is a
top-level module (``name.py``) or a package (``name/``). A newcomer reads the package
from that map, so a module added, moved or deleted without touching it fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PACKAGE = ROOT / "radar"

ENTRY = re.compile(r"^  ([A-Za-z_]\w*(?:\.py|/))(?:\s|$)")


def map_entries(text: str) -> list[str]:
    """The names the README's architecture map lists under ``radar/``, in order."""
    section = text.split("\n## Architecture", 1)
    assert len(section) == 2, "README.md has no '## Architecture' section"
    lines = section[1].splitlines()
    try:
        start = lines.index("radar/")
    except ValueError:
        raise AssertionError("the Architecture section has no map starting with 'radar/'")
    names = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):      # the next top-level folder or the fence
            break
        match = ENTRY.match(line)
        if match:
            names.append(match.group(1))
    return names


def tree_entries(package: Path) -> set[str]:
    """Every top-level module (but ``__init__.py``) and package of ``package``."""
    names = set()
    for path in package.iterdir():
        if path.name.startswith((".", "_")):
            continue
        if path.is_file() and path.suffix == ".py":
            names.add(path.name)
        elif path.is_dir() and any(path.glob("*.py")):
            names.add(path.name + "/")
    return names


def test_map_parser_reads_entries_not_continuations():
    text = ("intro\n## Architecture\n\n```\nradar/\n  cli.py      the command\n"
            "              a continuation line\n  data/       readers\nplugins/  other\n```\n")
    assert map_entries(text) == ["cli.py", "data/"]


def test_readme_map_matches_the_radar_package():
    listed = map_entries(README.read_text(encoding="utf-8"))
    assert listed, "the README's architecture map lists nothing"
    repeated = sorted({name for name in listed if listed.count(name) > 1})
    assert not repeated, f"listed more than once in README's map: {repeated}"
    actual = tree_entries(PACKAGE)
    missing = sorted(actual - set(listed))
    stale = sorted(set(listed) - actual)
    problems = []
    if missing:
        problems.append(f"radar/ holds {missing}, which the map leaves out (add a line each)")
    if stale:
        problems.append(f"the map names {stale}, which radar/ does not hold (remove or rename)")
    assert not problems, "README.md's architecture map is out of date: " + "; ".join(problems)
