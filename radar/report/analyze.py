"""`radar analyze`: what a results file says, with no labels needed.

Score statistics, anomaly counts and shares per service and per day, severity
counts when the results carry them, and the top anomalous sessions with their
explanations and a few of their original log lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table

from radar.console import data_text
from radar.data.logs import excerpt, original_logs
from radar.report.digest import (
    ANOMALIES,
    ERRORS,
    FINITE,
    FIRST_LEVEL,
    SCORE_SUM,
    SESSIONS,
    ResultsDigest,
)
from radar.results import Results
from radar.scoring.severity import LEVELS

PERCENTILES = (50, 90, 95, 99, 99.9)


def _counts(table: np.ndarray, names: dict[str, int], with_severity: bool) -> dict[str, dict]:
    out = {}
    for name, index in names.items():
        row = table[index]
        n = int(row[SESSIONS])
        if n == 0:
            continue
        flagged = int(row[ANOMALIES])
        out[name] = {"sessions": n, "anomalies": flagged, "share": flagged / n,
                     "mean_score": float(row[SCORE_SUM] / row[FINITE]) if row[FINITE] else None,
                     "has_error": int(row[ERRORS])}
        if with_severity:
            out[name]["severity"] = {level: int(row[FIRST_LEVEL + i])
                                     for i, level in enumerate(LEVELS)}
    return out


def _score_stats(digest: ResultsDigest) -> dict:
    moments = digest.moments
    if not moments.n:
        return {}
    stats = {"mean": moments.mean, "std": moments.std, "min": moments.low,
             "max": moments.high, "n_infinite": moments.n_infinite}
    stats.update({f"p{p:g}": float(np.percentile(digest.sample.values, p)) for p in PERCENTILES})
    return stats


def analyze(results: Results | ResultsDigest, *, data_dir: str | Path | None = None,
            cache_dir: str | Path | None = None, top_n: int = 10) -> dict:
    """The analysis as a JSON-ready dict (``top`` needs ``keep_top`` when reading).

    ``results`` is best a :func:`~radar.report.digest.digest_results` digest (bounded
    memory); loaded columns are digested first. Percentiles come from the digest's
    reservoir sample: exact up to a million sessions, a uniform sample beyond.
    """
    digest = results if isinstance(results, ResultsDigest) else ResultsDigest.from_results(results)
    flagged = int(digest.per_file[:, ANOMALIES].sum())
    # The highest scores, flagged or not: with nothing flagged they are still where to look.
    top = digest.top[:top_n]
    wanted: dict[str, set[int]] = {}
    for record in top:
        wanted.setdefault(record["file"], set()).add(int(record["session_id"]))
    logs = original_logs(data_dir, wanted, cache_dir=cache_dir)
    top_sessions = [_top_item(record, logs) for record in top]
    out = {"results": str(digest.path), "sessions": digest.n, "anomalies": flagged,
           "anomaly_share": flagged / digest.n, "threshold": digest.threshold,
           "score": _score_stats(digest),
           "per_service": _counts(digest.per_service, digest.services, digest.has_severity),
           "per_day": _counts(digest.per_file, digest.files, digest.has_severity),
           "top_anomalies": top_sessions,
           "original_logs_found": data_dir is not None and bool(logs)}
    if digest.has_severity:
        levels = digest.per_file[:, FIRST_LEVEL:].sum(axis=0)
        out["severity"] = {level: int(levels[i]) for i, level in enumerate(LEVELS)}
    return out


def _top_item(record: dict, logs: dict) -> dict:
    positions = record.get("top_positions") or []
    focus = positions[0]["position"] if positions else None
    lines = logs.get((record["file"], int(record["session_id"])))
    item = {key: record.get(key) for key in ("file", "session_id", "session_key",
                                             "service_name", "anomaly_score", "is_anomaly",
                                             "severity", "severity_reasons", "has_error",
                                             "has_warn", "length") if key in record}
    item["top_positions"] = positions
    item["log_excerpt"] = excerpt(lines, focus) if lines is not None else None
    return item


def explain_positions(positions: list[dict]) -> str:
    """A result's ``top_positions`` in one line of words."""
    parts = []
    for item in positions:
        if item.get("kind") == "unseen":
            parts.append(f"pos {item['position']}: event never seen in training")
        elif item.get("kind") == "end":
            parts.append(f"pos {item['position']}: session ended unexpectedly")
        else:
            probability = item.get("probability")
            parts.append(f"pos {item['position']}: event {item.get('event_id')} rank "
                         f"{item.get('rank')}" + (f" p={probability:.2g}"
                                                  if probability is not None else ""))
    return "; ".join(parts) or "-"


def analysis_renderable(analysis: dict) -> Group:
    """Rich tables for the terminal."""
    s = analysis["score"]
    head = Table(title=f"{data_text(analysis['results'])}: {analysis['sessions']} sessions, "
                       f"{analysis['anomalies']} anomalies ({analysis['anomaly_share']:.2%})"
                       + (f", threshold {analysis['threshold']:.4g}"
                          if analysis["threshold"] is not None else ""))
    for key in ("mean", "std", "min", *(f"p{p:g}" for p in PERCENTILES), "max"):
        head.add_column(key, justify="right")
    head.add_row(*(f"{s[key]:.4g}" for key in ("mean", "std", "min",
                                                *(f"p{p:g}" for p in PERCENTILES), "max")))
    parts = [head]
    for key, title in (("per_service", "service"), ("per_day", "day file")):
        table = Table(title=f"Anomalies per {title}")
        table.add_column(title)
        for column in ("sessions", "anomalies", "share", "has_error", "mean score"):
            table.add_column(column, justify="right")
        for name, entry in analysis[key].items():
            mean = entry["mean_score"]
            table.add_row(data_text(name), str(entry["sessions"]), str(entry["anomalies"]),
                          f"{entry['share']:.2%}", str(entry["has_error"]),
                          "-" if mean is None else f"{mean:.4g}")
        parts.append(table)
    if "severity" in analysis:
        table = Table(title="Severity")
        for level in LEVELS:
            table.add_column(level, justify="right")
        table.add_row(*(str(analysis["severity"][level]) for level in LEVELS))
        parts.append(table)
    top = Table(title="Top anomalous sessions (highest scores)", show_lines=True)
    for column in ("file / session", "service", "score", "why", "log lines"):
        top.add_column(column)
    for item in analysis["top_anomalies"]:
        lines = item.get("log_excerpt")
        text = ("\n".join(("> " if line["focus"] else "  ") + data_text(line["text"][:160])
                          for line in lines) if lines
                else "(day file not found: pass --data DIR)" if lines is None else "(none)")
        why = explain_positions(item["top_positions"])
        if item.get("severity"):
            why = f"{item['severity']}: " + why
        flag = "" if item.get("is_anomaly") else "\n(not flagged)"
        top.add_row(f"{data_text(item['file'])}\n{item['session_id']}",
                    data_text(item["service_name"]), f"{item['anomaly_score']:.4g}{flag}",
                    data_text(why), text)
    parts.append(top)
    return Group(*parts)
