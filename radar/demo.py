"""The built-in demo: generated day files with ground truth, for `radar run` with no data,
and the generated code that "wrote" their log lines, indexed so flagged events link to it."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

from radar.fsutil import atomic_write_text

DEMO_DAYS, DEMO_SESSIONS, DEMO_SEED = 4, 2000, 20260224
DEMO_SOURCE, DEMO_INDEX = "src", "source-index.jsonl"
_METHODS = {"DEBUG": "debug", "INFO": "info", "WARN": "warning", "WARNING": "warning",
            "ERROR": "error", "FATAL": "critical", "CRITICAL": "critical"}


def ensure_demo_data(config, log: Callable[[str], None]) -> Path:
    """Generate the demo day files (and labels.csv) unless they are already there."""
    from radar.data.synth import generate

    data_dir = Path(config.data.preprocessed_dir)
    labels = data_dir / "labels.csv"
    if not (labels.is_file() and list(data_dir.glob(config.data.file_pattern))):
        log(f"generating demo data in {data_dir} ({DEMO_DAYS} days x {DEMO_SESSIONS} sessions)")
        generate(data_dir, days=DEMO_DAYS, sessions=DEMO_SESSIONS, anomaly_rate=0.05,
                 seed=DEMO_SEED)
    return labels


def write_template_source(templates: str | Path, out: str | Path) -> list[Path]:
    """A Python source tree that logs every template of a ``templates.tsv`` with a
    ``service`` (and ``level``) column (``radar synth`` writes them): one module per service, one function
    per template, ``<*>`` as a ``%s`` argument. The demo's stand-in for the services' code,
    so ``radar source`` and the triage page have a logging statement to show."""
    by_service: dict[str, list[tuple[str, str, str]]] = {}
    with Path(templates).open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            method = _METHODS.get((row.get("level") or "INFO").upper(), "info")
            by_service.setdefault(row["service"], []).append(
                (row["event_id"], method, row["template"]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for service, items in sorted(by_service.items()):
        lines = [f'"""The {service} service\'s log statements (generated with the demo data)."""',
                 "", "import logging", "", "log = logging.getLogger(__name__)", ""]
        for event_id, method, template in items:
            n = template.count("<*>")
            text = template.replace("%", "%%").replace("<*>", "%s")
            params = ", ".join(f"a{j}" for j in range(n))
            args = "".join(f", a{j}" for j in range(n))
            lines += ["", f"def event_{event_id}({params}):", f"    log.{method}({text!r}{args})", ""]
        path = out / f"{service}.py"
        atomic_write_text(path, "\n".join(lines))
        written.append(path)
    return written


def ensure_demo_source(config, log: Callable[[str], None]) -> Path | None:
    """The demo's source index (built once beside the demo data), or None where the
    ``source`` extra (tree-sitter and its Python grammar) is not installed."""
    from radar.source.annotate import TEMPLATES_NAME
    from radar.source.extract import ExtractOptions
    from radar.source.index import build_index
    from radar.source.languages import INSTALL_HINT, can_parse

    if not can_parse(".py"):
        log(f"no source links in the demo: {INSTALL_HINT}")
        return None
    data_dir = Path(config.data.preprocessed_dir)
    index = data_dir / DEMO_INDEX
    if not index.is_file():
        write_template_source(data_dir / TEMPLATES_NAME, data_dir / DEMO_SOURCE)
        build_index([data_dir / DEMO_SOURCE], index, ExtractOptions())
        log(f"indexed the demo's generated source in {data_dir / DEMO_SOURCE}")
    return index
