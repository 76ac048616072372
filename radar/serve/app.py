"""The FastAPI application of ``radar serve``: routes, auth, limits, metrics, lifespan.

:func:`create_app` builds the app from :class:`ServeSettings`. The lifespan starts
loading the run's detectors in a worker thread and returns at once, so the server
answers ``/v1/health`` (503 "loading", then 200 "ready") while models load; scoring
requests before then get 503. Body size is limited by an ASGI middleware (from
Content-Length and while reading, 413), sessions per request and events per session
in the route (413 naming the limit and the session). With a token configured every
route but ``/v1/health`` and the docs needs ``Authorization: Bearer TOKEN``, checked
before the body is read. A scoring request whose client disconnects while it waits
is withdrawn from the queue. No route takes a path from the client: the run folder
is fixed at start.
"""

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from radar import __version__
from radar.errors import RadarError
from radar.serve.batching import BatcherClosed, MicroBatcher, QueueFull
from radar.serve.metrics import CONTENT_TYPE, ServerMetrics
from radar.serve.middleware import (
    CLIENT_GONE,
    AuthMiddleware,
    BodyDeadlineMiddleware,
    BodyLimitMiddleware,
    MetricsMiddleware,
)
from radar.serve.schemas import ErrorResponse, HealthResponse, ScoreRequest, ScoreResponse
from radar.serve.triage import TriageCookieMiddleware, add_triage_routes

log = logging.getLogger("radar.serve")

DEFAULT_MAX_EVENTS = 65536


@dataclass
class ServeSettings:
    """Everything ``radar serve`` can be told; the defaults are the command's."""

    run_dir: Path
    device: str = "auto"
    max_batch_sessions: int = 256
    batch_wait_ms: float = 2.0
    max_sessions_per_request: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024
    max_events: int = DEFAULT_MAX_EVENTS
    max_queued_sessions: int = 8192
    token: str | None = None
    threshold: float | None = None      # overrides the run's calibrated threshold
    header_timeout_s: float = 10.0      # request line and headers (radar.serve.connections)
    body_timeout_s: float = 30.0        # the whole body, from the end of the headers
    max_connections: int = 2048         # open connections (radar.serve.connections)


@dataclass
class ServerState:
    """What the routes share: the loaded model (None while loading) and its batcher."""

    settings: ServeSettings
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    model: Any = None
    batcher: MicroBatcher | None = None
    error: str | None = None


def _default_loader(settings: ServeSettings):
    from radar.device import resolve_device
    from radar.serve.scoring import load_serving_model

    return load_serving_model(settings.run_dir, resolve_device(settings.device),
                              threshold=settings.threshold)


async def _load(state: ServerState, loader: Callable, on_error: Callable | None) -> None:
    """Load and warm the model in a thread, then start the batcher; record a failure."""
    settings = state.settings
    try:
        model = await asyncio.to_thread(loader)
        await asyncio.to_thread(model.warm_up)
    except Exception as exc:  # noqa: BLE001 - reported through /v1/health and on_error
        state.error = str(exc) if isinstance(exc, RadarError) else f"{type(exc).__name__}: {exc}"
        log.error("loading the models failed: %s", state.error)
        if on_error is not None:
            on_error(exc)
        return
    metrics = state.metrics

    def on_batch(sessions: int, requests: int, seconds: float) -> None:
        metrics.batch_sessions.observe(sessions)
        metrics.batch_requests.observe(requests)
        metrics.score_seconds.observe(seconds)

    batcher = MicroBatcher(model.score, max_batch_sessions=settings.max_batch_sessions,
                           wait_s=settings.batch_wait_ms / 1000.0,
                           max_queued_sessions=settings.max_queued_sessions, on_batch=on_batch)
    batcher.start()
    state.model, state.batcher = model, batcher
    metrics.ready.set(1)
    log.info("ready: %s on %s (%d detector(s))", model.name, model.device, len(model.loaded))


def create_app(settings: ServeSettings, *, loader: Callable | None = None,
               on_load_error: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The scoring app; ``loader()`` returns the model (default: load ``settings.run_dir``)."""
    state = ServerState(settings)
    load = loader or (lambda: _default_loader(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.get_running_loop().create_task(_load(state, load, on_load_error))
        try:
            yield
        finally:
            task.cancel()
            if state.batcher is not None:
                await state.batcher.stop()

    app = FastAPI(title="RADAR scoring API", version=__version__, lifespan=lifespan,
                  description="Score log sessions with a trained RADAR run; see docs/serve.md.")
    app.state.radar = state
    # The last added runs first: metrics see every answer, auth comes before the body.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    if settings.token:
        app.add_middleware(AuthMiddleware, token=settings.token)
        # Runs before the check: the triage page's cookie becomes the bearer header.
        app.add_middleware(TriageCookieMiddleware, token=settings.token)
    app.add_middleware(BodyDeadlineMiddleware, timeout_s=settings.body_timeout_s)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    auth = [Depends(_bearer_scheme())] if settings.token else []
    _add_score_route(app, state, auth)
    _add_info_routes(app, state, auth)
    add_triage_routes(app, settings.run_dir, auth=auth)      # /triage: docs/triage.md
    return app


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without echoing the (possibly huge) input back."""
    errors = [{key: value for key, value in error.items() if key not in ("input", "url")}
              for error in exc.errors()]
    if "json" not in request.headers.get("content-type", ""):   # the body was not parsed
        errors = [{"type": "content_type", "loc": ["header", "content-type"],
                   "msg": "send the body as JSON with 'Content-Type: application/json'"}]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug's 500 in JSON like every other answer (the traceback goes to the log)."""
    return JSONResponse(status_code=500, content={
        "detail": "internal error; the server log has the cause"})


def _bearer_scheme() -> HTTPBearer:
    """The token scheme as the OpenAPI docs show it; the check itself is
    :class:`~radar.serve.middleware.AuthMiddleware`'s, before the body is read."""
    return HTTPBearer(auto_error=False, description="RADAR_API_TOKEN (or --token-env)")


def _not_ready(state: ServerState) -> HTTPException:
    if state.error:
        return HTTPException(503, f"the models failed to load: {state.error}")
    return HTTPException(503, "the models are still loading; retry shortly "
                              "(GET /v1/health says when they are ready)",
                         headers={"Retry-After": "1"})


def _check_limits(body: ScoreRequest, settings: ServeSettings) -> None:
    n = len(body.sessions)
    if n > settings.max_sessions_per_request:
        raise HTTPException(413, f"{n} sessions in one request; the limit is "
                                 f"{settings.max_sessions_per_request} "
                                 "(--max-sessions-per-request): split the batch")
    for index, session in enumerate(body.sessions):
        if len(session.event_sequence) > settings.max_events:
            raise HTTPException(413, f"session {index} has {len(session.event_sequence)} "
                                     f"events; the limit is {settings.max_events} events per "
                                     "session (--max-events)")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (valid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _json_bytes(payload: dict) -> bytes:
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:     # a non-finite score: null instead of the non-standard Infinity
        text = json.dumps(_finite(payload), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


ERRORS = {code: {"model": ErrorResponse, "description": text} for code, text in (
    (401, "Token required and missing or wrong"), (413, "A size limit was exceeded"),
    (503, "Models not loaded yet, or too many sessions queued"))}


def _add_score_route(app: FastAPI, state: ServerState, auth: list) -> None:
    metrics = state.metrics

    @app.post("/v1/score", response_model=ScoreResponse, dependencies=auth,
              responses=ERRORS, summary="Score a batch of sessions")
    async def score(body: ScoreRequest, request: Request) -> Response:
        """Each session's anomaly score, decision, explanation (and for an ensemble run
        every detector's say and a severity), as `radar detect` writes them."""
        _check_limits(body, state.settings)
        if state.batcher is None:
            raise _not_ready(state)
        try:
            records = await _unless_client_leaves(request, state.batcher.submit(body.sessions))
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
        except QueueFull as exc:
            raise HTTPException(503, f"server busy: {exc}; retry shortly",
                                headers={"Retry-After": "1"}) from None
        except BatcherClosed as exc:
            raise HTTPException(503, str(exc)) from None
        except Exception:
            log.exception("scoring failed")
            raise HTTPException(500, "scoring failed; the server log has the cause") from None
        flagged = [record for record in records if record["is_anomaly"]]
        metrics.sessions.inc(len(records))
        for record in flagged:
            metrics.anomalies.inc(severity=record.get("severity", "NONE"))
        payload = {"model": state.model.name, "n_sessions": len(records),
                   "n_anomalies": len(flagged), "results": records}
        return Response(_json_bytes(payload), media_type="application/json")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _unless_client_leaves(request: Request, work):
    """Await ``work``; cancel it (taking the request out of the batcher's queue) and
    raise :class:`ClientGone` when the client disconnects first."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientGone


async def _disconnected(request: Request) -> None:
    """Return once the server reports the client gone (the body is already read, so
    the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _add_info_routes(app: FastAPI, state: ServerState, auth: list) -> None:
    settings = state.settings

    @app.get("/v1/health", response_model=HealthResponse,
             responses={503: {"model": HealthResponse, "description": "Not ready"}},
             summary="Readiness (no token needed)")
    async def health() -> JSONResponse:
        if state.model is not None:
            return JSONResponse({"status": "ready"})
        status = "failed" if state.error else "loading"
        return JSONResponse({"status": status, "detail": state.error}, status_code=503)

    @app.get("/v1/models", dependencies=auth, responses=ERRORS,
             summary="Detectors, versions, thresholds, training data, limits")
    async def models() -> dict:
        if state.model is None:
            raise _not_ready(state)
        return {**state.model.info, "limits": {
            "max_body_bytes": settings.max_body_bytes,
            "max_sessions_per_request": settings.max_sessions_per_request,
            "max_events": settings.max_events},
            "batching": {"max_batch_sessions": settings.max_batch_sessions,
                         "batch_wait_ms": settings.batch_wait_ms,
                         "max_queued_sessions": settings.max_queued_sessions},
            "auth": bool(settings.token)}

    @app.get("/metrics", dependencies=auth, responses=ERRORS,
             response_class=Response, summary="Prometheus metrics (text format 0.0.4)")
    async def prometheus() -> Response:
        if state.batcher is not None:
            state.metrics.queued.set(state.batcher.queued_sessions)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)
