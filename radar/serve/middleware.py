"""Plain ASGI middleware of the scoring server: auth, the body checks and request metrics.

:class:`AuthMiddleware` answers 401 to a request without the bearer token before
anything of its body is parsed or buffered. :class:`BodyLimitMiddleware` refuses a
body over the limit with 413 before the app parses anything: at once when
Content-Length says so, otherwise as soon as the bytes read pass the limit (chunked
uploads); a JSON body that is not valid text (JSON is UTF-8) is a 422 like any
other malformed JSON. :class:`BodyDeadlineMiddleware` answers 408 when the body has
not arrived in full within the body timeout (a slow sender, or fewer bytes than its
Content-Length). :class:`MetricsMiddleware` counts every answer by endpoint
and status and times it, 401s, 408s, 413s and 500s included; a request whose client
left before any answer is counted as 499, not 500; paths the server does not
serve are counted under ``other`` so clients cannot grow the label set.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time

from radar.serve.metrics import ServerMetrics

OPEN_PATHS = frozenset({"/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc",
                        "/openapi.json"})    # no token needed (see docs/serve.md)
KNOWN_PATHS = OPEN_PATHS | {"/v1/score", "/v1/models", "/metrics"}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
CLIENT_GONE = 499       # nginx's "client closed request": what metrics count such a request as
DRAIN_BYTES = 16 * 1024 * 1024      # most of an oversized body read to answer it cleanly
# Most of a body read before a 401: enough for clients to see the answer (curl and httpx
# do with 7 MiB bodies), little work for a flood of unauthenticated uploads.
AUTH_DRAIN_BYTES = 64 * 1024


async def _send_error(send, status: int, detail, headers: tuple = ()) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode("ascii")),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _drain(receive, more: bool = True, limit: int = DRAIN_BYTES) -> bool:
    """Read and drop what is left of a body, up to ``limit`` bytes, before answering
    early: closing a socket with unread data resets the connection, and the client
    would see a reset instead of the answer. False when the client went away."""
    drained = 0
    while more and drained <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        drained += len(message.get("body", b""))
        more = message.get("more_body", False)
    return True


class AuthMiddleware:
    """401 for a request without ``Authorization: Bearer <token>`` on every path but
    :data:`OPEN_PATHS`, checked (in constant time) before the body is read."""

    MESSAGE = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"

    def __init__(self, app, token: str):
        self.app, self.expected = app, token.encode("utf-8")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["method"] in _BODY_METHODS and not await _drain(receive,
                                                                 limit=AUTH_DRAIN_BYTES):
            return    # the client went away
        await _send_error(send, 401, self.MESSAGE,
                          ((b"www-authenticate", b'Bearer realm="radar"'),))

    def _allowed(self, scope) -> bool:
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(),
                                                                    self.expected)


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
        body = b"".join(chunks)
        problem = _not_text(body, dict(scope["headers"]).get(b"content-type", b""))
        if problem:
            await _send_error(send, 422, [{"type": "json_invalid", "loc": ["body"],
                                           "msg": problem}])
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, receive, send, size: str, more: bool = True) -> None:
        """413, after draining what is left of the body (up to :data:`DRAIN_BYTES`)."""
        if await _drain(receive, more):
            await _send_error(send, 413, self._too_large(size))


def _not_text(body: bytes, content_type: bytes) -> str | None:
    """Why a JSON ``body`` cannot be decoded (None when it can, or is not JSON): the
    framework would answer a bare 400 where every other malformed body gets a 422."""
    if b"json" not in content_type.lower() or not body:
        return None
    encoding = json.detect_encoding(body)       # what json.loads would decode it as
    try:
        body.decode(encoding)
    except UnicodeDecodeError as exc:
        return (f"the body is not valid {encoding.upper()} text (byte {exc.start}); "
                "send JSON encoded as UTF-8")
    return None


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
        status = [CLIENT_GONE]      # no answer and no error: the client left first

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except BaseException:
            if status[0] == CLIENT_GONE:
                status[0] = 500
            raise
        finally:
            path = scope.get("path", "")
            endpoint = path if path in KNOWN_PATHS else "other"
            self.metrics.requests.inc(endpoint=endpoint, status=str(status[0]))
            self.metrics.latency.observe(time.perf_counter() - start, endpoint=endpoint)


class BodyDeadlineMiddleware:
    """408 when a request's body has not arrived in full ``timeout_s`` seconds after its
    headers: the app sees the client as gone (``http.disconnect``), this answers."""

    MESSAGE = ("the request body took over {:g} s to arrive (--body-timeout); send it "
               "at once, and no fewer bytes than Content-Length says")

    def __init__(self, app, timeout_s: float):
        self.app, self.timeout_s = app, float(timeout_s)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        state = {"body_done": False, "timed_out": False, "answered": False}

        async def timed_receive():
            if state["body_done"] or state["timed_out"]:
                return await receive() if state["body_done"] else {"type": "http.disconnect"}
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(left, 0.0))
            except asyncio.TimeoutError:
                state["timed_out"] = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def noting_send(message) -> None:
            if message["type"] == "http.response.start":
                state["answered"] = True
            await send(message)

        await self.app(scope, timed_receive, noting_send)
        if state["timed_out"] and not state["answered"]:
            await _send_error(send, 408, self.MESSAGE.format(self.timeout_s))
