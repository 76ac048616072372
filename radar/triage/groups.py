"""One verdict for many: a group key per flagged session from what made it stand out.

Two keys per session, both from its explanation (``top_positions``, most surprising
first), so look-alike sessions share them without reading any day file:

- ``group_event``: the most surprising event. Where the run has a source index and the
  event links to a logging statement, the statement is the event's identity
  (``stmt:FILE:LINE``): an unseen event (no event id) that the same line of code printed
  then groups with its look-alikes. Otherwise the template id (``event:ID``), else the
  kind in its service (``unseen@SERVICE``, ``end@SERVICE``: the session stopped early).
- ``group_path``: the set of explained events (the top few, ordered), as identities of
  the first kind joined with ``+``: the same template path through the surprising part.

``group_label`` says the first key in words (the template or statement text and where
it is logged) for the page's group view.
"""

from __future__ import annotations

from typing import Any

LABEL_CHARS = 160


def event_identity(item: dict[str, Any], service: str) -> str:
    """What one explained event is, for grouping: the logging statement, else the
    template id, else its kind in the session's service."""
    source = item.get("source")
    if isinstance(source, dict) and source.get("file") and source.get("line") is not None:
        return f"stmt:{source['file']}:{source['line']}"
    if item.get("event_id") is not None:
        return f"event:{item['event_id']}"
    return f"{item.get('kind') or 'event'}@{service}"


def event_label(item: dict[str, Any], service: str, templates: dict[str, str] | None) -> str:
    """The event in words: its template (or statement) and where the code logs it."""
    kind = item.get("kind") or "event"
    source = item.get("source") if isinstance(item.get("source"), dict) else None
    text = None
    if source:
        text = source.get("template") or source.get("statement")
    if text is None and item.get("event_id") is not None and templates:
        text = templates.get(str(item["event_id"]))
    if text is None:
        text = {"end": "session ended early", "unseen": "an event never seen in training"
                }.get(kind, f"event {item.get('event_id')}")
    where = f" ({source['file']}:{source['line']})" if source and source.get("file") else ""
    prefix = "unseen: " if kind == "unseen" else ""
    # The service only where it is part of the key (no template, no statement).
    owner = "" if source or item.get("event_id") is not None else f"{service} · "
    label = f"{owner}{prefix}{text}{where}"
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def group_keys(record: dict[str, Any], templates: dict[str, str] | None = None
               ) -> tuple[str, str, str]:
    """(group_event, group_path, group_label) of one result record."""
    service = str(record.get("service_name") or "unknown")
    positions = [item for item in (record.get("top_positions") or []) if isinstance(item, dict)]
    if not positions:
        key = f"score-only@{service}"
        return key, key, f"{service} · no explained event (score only)"
    first = event_identity(positions[0], service)
    path = "+".join(event_identity(item, service) for item in positions)
    return first, path, event_label(positions[0], service, templates)
