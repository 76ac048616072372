"""Plain ASGI middleware of the scoring server: the body-size limit and request metrics.

:class:`BodyLimitMiddleware` refuses a body over the limit with 413 before the app
parses anything: at once when Content-Length says so, otherwise as soon as the
bytes read pass the limit (chunked uploads). :class:`MetricsMiddleware` counts
every answer by endpoint and status and times it, 413s and 500s included; paths
the server does not serve are counted under ``other`` so clients cannot grow the
label set.
"""

from __future__ import annotations

import json
import time

from radar.serve.metrics import ServerMetrics

KNOWN_PATHS = frozenset({"/v1/score", "/v1/health", "/v1/models", "/metrics", "/docs",
                         "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DRAIN_BYTES = 16 * 1024 * 1024      # most of an oversized body read to answer it cleanly


async def _send_error(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode("ascii")),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for request bodies over ``limit`` bytes; the app gets the body in one piece."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    def _too_large(self, size: str) -> str:
        return (f"request body of {size} bytes is over the limit of {self.limit} bytes "
                "(--max-body-bytes): send fewer sessions per request")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_error(send, 400, "Content-Length is not a number")
                return
            if length > self.limit:
                await self._refuse(receive, send, str(length))
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(receive, send, f"more than {self.limit}",
                                   message.get("more_body", False))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, receive, send, size: str, more: bool = True) -> None:
        """413, after reading (and dropping) what is left of the body up to
        :data:`DRAIN_BYTES`: closing a socket with unread data resets the connection,
        and the client would see a reset instead of the answer."""
        drained = 0
        while more and drained <= DRAIN_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _send_error(send, 413, self._too_large(size))


def _replay(body: bytes, receive):
    """A ``receive`` that gives the buffered body once, then defers to the real one."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        if pending:
            return pending.pop()
        return await receive()
    return replay


class MetricsMiddleware:
    """Counts and times every HTTP answer (``radar_requests_total``, ``radar_request_seconds``)."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in KNOWN_PATHS else "other"
            self.metrics.requests.inc(endpoint=endpoint, status=str(status[0]))
            self.metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)
