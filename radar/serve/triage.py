"""The triage page of ``radar serve --run RUN``: flagged sessions, why, where in the code,
and one verdict for many (docs/triage.md).

Routes, all under ``/triage`` and behind the API's token when one is set:

- ``GET /triage``: the page (static HTML, JS and CSS from this package; nothing from
  the network). Without a valid token it answers 401 with a form that asks for it.
- ``POST /triage/login``: the form's token, checked in constant time; sets an HttpOnly,
  ``SameSite=Strict`` cookie scoped to ``/triage`` holding a keyed hash of the token
  (never the token itself) and redirects to the page.
- ``GET /triage/api/status|sessions|groups|session/{row}|verdicts`` and
  ``POST /triage/api/verdicts``: the page's data, as JSON.

A browser is let in by the cookie, any client by ``Authorization: Bearer TOKEN``.
:class:`TriageCookieMiddleware` turns a valid cookie into that header before
:class:`~radar.serve.middleware.AuthMiddleware` checks it, so one check guards the API
and the page alike. A state-changing request authenticated by the cookie must carry
``X-Radar-Triage: 1`` (a header no other site's form or fetch can send without a CORS
preflight this server never grants), which stops cross-site request forgery.

The data comes from the run's ``triage.parquet`` (:mod:`radar.triage.store`), built in a
worker thread when missing or older than ``anomaly_results.json``; meanwhile the data
routes answer 503 with the progress and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from radar.errors import RadarError
from radar.rundir import RESULTS, RunDir, read_json
from radar.triage import store as triage_store
from radar.triage import verdicts as triage_verdicts

log = logging.getLogger("radar.serve.triage")

PREFIX = "/triage"
COOKIE = "radar_triage"
CSRF_HEADER = b"x-radar-triage"
STATIC = {"triage.js": "text/javascript; charset=utf-8", "triage.css": "text/css; charset=utf-8"}
# Nothing from the network; no inline script or style: log text can never become code.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
MAX_LINES = 5000            # raw lines shown in a detail view (the rest is counted)
LINE_CHARS = 4000           # a raw line is cut here
MAX_GROUP_VERDICT = 1_000_000
MAX_LOGIN_BYTES = 4096


def _static(name: str) -> bytes:
    return resources.files("radar.serve").joinpath("static", name).read_bytes()


def _secure_headers(extra: dict | None = None) -> dict:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", **(extra or {})}


# ----------------------------------------------------------------------- auth

def cookie_value(token: str) -> str:
    """What the cookie holds: a keyed hash of the token, so the cookie is not the token."""
    return hmac.new(token.encode("utf-8"), b"radar triage session", hashlib.sha256).hexdigest()


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RADAR triage: token</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/triage/static/triage.css"></head>
<body class="login"><form method="post" action="/triage/login">
<h1>RADAR triage</h1><p>{message}</p>
<label>API token <input type="password" name="token" autofocus autocomplete="off"></label>
<button type="submit">Open</button>
<p class="hint">The token the server was started with (the variable named by
<code>--token-env</code>, RADAR_API_TOKEN by default).</p></form></body></html>
"""


async def _send(send, status: int, body: bytes, content_type: bytes,
                headers: tuple = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode("ascii")),
                            *((key.lower().encode("latin-1"), value.encode("latin-1"))
                              for key, value in _secure_headers().items()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _login_page(send, status: int, message: str) -> None:
    body = LOGIN_PAGE.format(message=html.escape(message)).encode("utf-8")
    await _send(send, status, body, b"text/html; charset=utf-8",
                ((b"www-authenticate", b'Bearer realm="radar"'),))


class TriageCookieMiddleware:
    """The browser's way in to ``/triage`` (see the module docstring); outside that
    prefix it does nothing."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token
        self.expected = cookie_value(token).encode("ascii")
        self.header = b"Bearer " + token.encode("utf-8")

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if path == PREFIX + "/login" and scope["method"] == "POST":
            await self._login(scope, receive, send)
            return
        if path == PREFIX + "/static/triage.css":     # the login form's style: no data
            await _send(send, 200, _static("triage.css"), STATIC["triage.css"].encode())
            return
        headers = dict(scope["headers"])
        by_header = b"authorization" in headers
        cookie = _cookie(headers, COOKIE)
        by_cookie = (not by_header and cookie is not None
                     and hmac.compare_digest(cookie.encode("latin-1"), self.expected))
        if by_cookie:
            if scope["method"] not in ("GET", "HEAD") and CSRF_HEADER not in headers:
                await _send(send, 403, b'{"detail": "send the header X-Radar-Triage: 1 with '
                            b'changes (the page does)"}', b"application/json")
                return
            scope = dict(scope, headers=[*scope["headers"], (b"authorization", self.header)])
        elif not by_header and path in (PREFIX, PREFIX + "/"):
            await _login_page(send, 401, "This page needs the server's API token.")
            return
        await self.app(scope, receive, send)

    async def _login(self, scope, receive, send) -> None:
        body, more = b"", True
        while more and len(body) <= MAX_LOGIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        given = (parse_qs(body[:MAX_LOGIN_BYTES].decode("utf-8", "replace")).get("token")
                 or [""])[0].strip()
        if not hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8")):
            await _login_page(send, 401, "That token is not the server's; try again.")
            return
        cookie = (f"{COOKIE}={self.expected.decode('ascii')}; Path={PREFIX}; HttpOnly; "
                  "SameSite=Strict")
        await _send(send, 303, b"", b"text/plain",
                    ((b"location", PREFIX.encode("ascii")),
                     (b"set-cookie", cookie.encode("ascii"))))


# ----------------------------------------------------------------------- data

@dataclass
class TriageState:
    """The run's store (built once, rebuilt when the results change) and where its day
    files are."""

    run_dir: Path
    store: triage_store.TriageStore | None = None
    stamp: tuple | None = None
    building: bool = False
    progress: int = 0
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _context: dict | None = None

    def _results_stamp(self) -> tuple | None:
        try:
            stat = (self.run_dir / RESULTS).stat()
        except OSError:
            return None
        return stat.st_size, stat.st_mtime_ns

    def get(self) -> triage_store.TriageStore:
        """The store, or HTTPException 503 while it is being built (404 without results)."""
        stamp = self._results_stamp()
        if stamp is None:
            raise HTTPException(404, f"{self.run_dir / RESULTS} does not exist: the run has "
                                     "not scored its validation days yet; finish `radar run`")
        with self.lock:
            if self.store is not None and self.stamp == stamp:
                return self.store
            if self.error and self.stamp == stamp:
                raise HTTPException(500, f"the triage store could not be built: {self.error}")
            if not self.building and triage_store.is_current(self.run_dir):
                try:                    # built already (by the run, or before a restart)
                    self.store = triage_store.TriageStore(triage_store.store_path(self.run_dir))
                except RadarError as exc:
                    raise HTTPException(500, str(exc)) from None
                self.stamp = stamp
                return self.store
            if not self.building:
                self.building, self.progress, self.error = True, 0, None
                threading.Thread(target=self._build, args=(stamp,), daemon=True,
                                 name="triage-store").start()
        raise HTTPException(503, f"building the triage store from {RESULTS} "
                                 f"({self.progress} records so far); retry shortly",
                            headers={"Retry-After": "1"})

    def _build(self, stamp: tuple) -> None:
        def progress(count: int) -> None:
            self.progress = count
        try:
            started = time.perf_counter()
            path = triage_store.ensure_store(self.run_dir, progress=progress)
            store = triage_store.TriageStore(path)
            log.info("triage store %s ready (%.1f s)", path, time.perf_counter() - started)
            with self.lock:
                self.store, self.stamp, self.building = store, stamp, False
        except Exception as exc:  # noqa: BLE001 - shown to the page as a 500
            message = str(exc) if isinstance(exc, RadarError) else f"{type(exc).__name__}: {exc}"
            log.error("building the triage store failed: %s", message)
            with self.lock:
                self.error, self.stamp, self.building = message, stamp, False

    def context(self) -> dict:
        """Where the run's day files and cache are, and each detector's own threshold."""
        if self._context is None:
            try:
                run = RunDir.open(self.run_dir)
                config = run.config() or {}
                ensemble = read_json(run.ensemble_state) if run.is_ensemble else None
            except RadarError:
                config, ensemble = {}, None
            data = config.get("data") or {}
            scorer = (ensemble or {}).get("scorer") or {}
            thresholds = dict(zip(scorer.get("detectors") or [], scorer.get("thresholds") or []))
            source = (config.get("source") or {}).get("index")
            self._context = {"data_dir": data.get("preprocessed_dir"),
                             "cache_dir": data.get("cache_dir"),
                             "label_file": data.get("label_file"),
                             "thresholds": thresholds, "source_index": source,
                             "detectors": config.get("detectors") or [],
                             "templates": triage_store.run_templates(self.run_dir) or {}}
        return self._context


def _raw_lines(context: dict, file_name: str, session_id: int) -> list[str] | None:
    from radar.data.logs import original_logs

    try:
        found = original_logs(context["data_dir"], {file_name: {session_id}},
                              cache_dir=context["cache_dir"])
    except (RadarError, OSError) as exc:
        log.warning("raw lines of session %s of %s: %s", session_id, file_name, exc)
        return None
    return found.get((file_name, session_id))


def _filters(service: list[str] | None, day: list[str] | None, severity: list[str] | None,
             agreement: int, group: str | None, by: str, flagged: str = "yes"
             ) -> triage_store.Filters:
    return triage_store.Filters(services=tuple(service or ()), days=tuple(day or ()),
                                severities=tuple(severity or ()), min_agreement=agreement,
                                group=group, group_by=by, flagged=flagged)


Severity = Literal["NORMAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
GroupBy = Literal["event", "path"]
Flagged = Literal["yes", "no", "any"]
VerdictName = Literal["anomaly", "normal", "unsure", "clear"]


Values = Annotated[list[str] | None, Query()]
Levels = Annotated[list[Severity] | None, Query()]
Agreement = Annotated[int, Query(ge=0, le=100)]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=500)]
GroupKey = Annotated[str | None, Query(max_length=10000)]


class SessionRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str = Field(min_length=1, max_length=1000)
    session_id: int = Field(ge=-2**63, lt=2**63)


class GroupRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=10000)
    by: GroupBy = "event"
    service: list[str] = Field(default_factory=list)
    day: list[str] = Field(default_factory=list)
    severity: list[Severity] = Field(default_factory=list)
    agreement: int = Field(default=0, ge=0, le=100)
    flagged: Flagged = "yes"


class VerdictRequest(BaseModel):
    """Give one verdict to some sessions, or to every (filtered) member of a group."""

    model_config = ConfigDict(extra="forbid")
    verdict: VerdictName
    who: str = Field(default="", max_length=200)
    sessions: list[SessionRef] = Field(default_factory=list, max_length=10000)
    group: GroupRef | None = None


def _verdict_map(run_dir: Path) -> dict:
    try:
        return triage_verdicts.read_verdicts(triage_verdicts.verdicts_path(run_dir))
    except RadarError as exc:
        raise HTTPException(500, str(exc)) from None


def _with_verdicts(sessions: list[dict], verdicts: dict) -> list[dict]:
    for session in sessions:
        item = verdicts.get((session["file"], session["session_id"]))
        session["verdict"] = None if item is None else {"verdict": item.verdict,
                                                        "who": item.who, "when": item.when}
    return sessions


def _effect(state: TriageState, store: triage_store.TriageStore, verdicts: dict) -> dict:
    flagged = store.flags_of(list(verdicts)) if verdicts else {}
    out = triage_verdicts.effect(state.run_dir, verdicts, flagged)
    out["run_label_file"] = state.context()["label_file"]
    return out


def add_triage_routes(app: FastAPI, run_dir: str | Path, *, auth: list) -> TriageState:
    """The page and its data routes (see the module docstring)."""
    state = TriageState(Path(run_dir))

    @app.get(PREFIX, include_in_schema=False, dependencies=auth)
    @app.get(PREFIX + "/", include_in_schema=False, dependencies=auth)
    async def page() -> Response:
        return Response(_static("triage.html"), media_type="text/html; charset=utf-8",
                        headers=_secure_headers())

    @app.get(PREFIX + "/static/{name}", include_in_schema=False, dependencies=auth)
    async def static(name: str) -> Response:
        if name not in STATIC:           # a fixed list: no path from the client is opened
            raise HTTPException(404, f"no static file {name!r}")
        return Response(_static(name), media_type=STATIC[name], headers=_secure_headers())

    @app.get(PREFIX + "/api/status", dependencies=auth, summary="Triage: the run and filters")
    async def status() -> dict:
        store = state.get()
        context = state.context()
        facets = await asyncio.to_thread(store.facets)
        return {"run": str(state.run_dir), "sessions": store.total(), "facets": facets,
                "detectors": context["detectors"], "source_index": context["source_index"],
                "levels": list(triage_store.LEVELS)}

    @app.get(PREFIX + "/api/sessions", dependencies=auth, summary="Triage: flagged sessions")
    async def sessions(service: Values = None, day: Values = None, severity: Levels = None,
                       agreement: Agreement = 0, group: GroupKey = None,
                       by: GroupBy = "event", flagged: Flagged = "yes", offset: Offset = 0,
                       limit: Limit = 50) -> dict:
        store = state.get()
        filters = _filters(service, day, severity, agreement, group, by, flagged)
        answer = await asyncio.to_thread(store.page, filters, offset=offset, limit=limit)
        _with_verdicts(answer["sessions"], _verdict_map(state.run_dir))
        return answer

    @app.get(PREFIX + "/api/groups", dependencies=auth, summary="Triage: look-alike groups")
    async def groups(service: Values = None, day: Values = None, severity: Levels = None,
                     agreement: Agreement = 0, by: GroupBy = "event", flagged: Flagged = "yes",
                     offset: Offset = 0, limit: Limit = 50) -> dict:
        store = state.get()
        filters = _filters(service, day, severity, agreement, None, by, flagged)
        answer = await asyncio.to_thread(store.groups, filters, offset=offset, limit=limit)
        verdicts = _verdict_map(state.run_dir)
        for item in answer["groups"]:        # how far each group is judged
            item["verdicts"] = _group_verdicts(verdicts, item["key"])
        return answer

    @app.get(PREFIX + "/api/session/{row}", dependencies=auth,
             summary="Triage: one session, its raw lines and code")
    async def session(row: int) -> dict:
        store = state.get()
        record = await asyncio.to_thread(store.session, row)
        if record is None:
            raise HTTPException(404, f"no session at row {row} of the run's results")
        context = state.context()
        lines = await asyncio.to_thread(_raw_lines, context, record["file"],
                                        record["session_id"])
        record["lines_total"] = None if lines is None else len(lines)
        record["lines"] = None if lines is None else [
            line[:LINE_CHARS] for line in lines[:MAX_LINES]]
        record["data_dir"] = context["data_dir"]
        for item in record["top"]:             # the event's text where no source says it
            if not item.get("source") and item.get("event_id") is not None:
                item["template"] = context["templates"].get(str(item["event_id"]))
        for member in record.get("members") or []:
            member["threshold"] = context["thresholds"].get(member["name"])
        item = _verdict_map(state.run_dir).get((record["file"], record["session_id"]))
        record["verdict"] = None if item is None else {"verdict": item.verdict,
                                                       "who": item.who, "when": item.when}
        return record

    @app.get(PREFIX + "/api/verdicts", dependencies=auth,
             summary="Triage: what the verdicts would change")
    async def verdict_effect() -> dict:
        store = state.get()
        verdicts = _verdict_map(state.run_dir)
        return await asyncio.to_thread(_effect, state, store, verdicts)

    @app.post(PREFIX + "/api/verdicts", dependencies=auth,
              summary="Triage: give a verdict to sessions or a whole group")
    async def give_verdict(body: VerdictRequest) -> JSONResponse:
        store = state.get()
        targets = [(item.file, item.session_id) for item in body.sessions]
        group_key = ""
        if body.group is not None:
            group = body.group
            filters = _filters(group.service, group.day, group.severity, group.agreement,
                               group.key, group.by, group.flagged)
            members = await asyncio.to_thread(store.group_sessions, filters)
            if not members:
                raise HTTPException(404, f"no session in group {group.key!r} with these "
                                         "filters")
            if len(members) > MAX_GROUP_VERDICT:
                raise HTTPException(413, f"group of {len(members)} sessions; narrow it with "
                                         "filters first")
            targets += members
            group_key = group.key
        if not targets:
            raise HTTPException(422, "name the sessions or the group the verdict is for")
        if body.sessions:
            named = [(item.file, item.session_id) for item in body.sessions]
            known = await asyncio.to_thread(store.flags_of, named)
            missing = [key for key in named if key not in known]
            if missing:
                raise HTTPException(404, f"session {missing[0][1]} of {missing[0][0]} is not "
                                         f"in the run's results ({len(missing)} session(s) "
                                         "unknown); nothing was saved")
        try:
            verdicts = await asyncio.to_thread(
                triage_verdicts.record_verdicts, state.run_dir, targets, body.verdict,
                who=body.who, group=group_key)
        except (RadarError, OSError) as exc:
            raise HTTPException(500, f"the verdicts could not be saved: {exc}") from None
        effect = await asyncio.to_thread(_effect, state, store, verdicts)
        return JSONResponse({"saved": len(set(targets)), "verdict": body.verdict,
                             "effect": effect})

    return state


def _group_verdicts(verdicts: dict, key: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in verdicts.values():
        if item.group == key:
            counts[item.verdict] = counts.get(item.verdict, 0) + 1
    return counts


