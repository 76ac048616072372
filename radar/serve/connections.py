"""Connection guards of ``radar serve`` under uvicorn's h11 protocol, and its config.

uvicorn times out only idle keep-alive connections: a client that sends its headers
one byte a second keeps a connection (and a file descriptor) for as long as it likes,
and enough of them exhaust the server's descriptors. :class:`GuardedProtocol` adds:

* a **header deadline**: the request line and headers must arrive within
  ``header_timeout_s`` of the connection opening (or of the previous answer, on a
  kept-alive connection), however slowly they trickle in; otherwise 408 and close;
* a **connection cap**: past ``max_connections`` open connections, a new one takes
  the place of the connection that has waited longest for its headers (a slow sender,
  never a request being served); when there is none it gets 503 and is closed.

The body has its own deadline (:class:`~radar.serve.middleware.BodyDeadlineMiddleware`).
:class:`RepeatFilter` bounds the log: a flood of clients cannot turn one warning into
a hundred thousand lines. :func:`uvicorn_config` puts it all together; the command,
the tests and the abuse benchmark all serve through it.
"""

from __future__ import annotations

import copy
import json
import logging
import resource
import threading
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("radar.serve")

FD_RESERVE = 64         # descriptors kept for the model, the log and files


def _canned(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode("utf-8")
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


HEADERS_TOO_SLOW = _canned(408, "Request Timeout", "the request headers took too long to "
                           "arrive (--header-timeout); send them at once")
TOO_MANY = _canned(503, "Service Unavailable", "too many open connections "
                   "(--max-connections); retry shortly")


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (see above);
    :func:`guarded_protocol` sets the two class attributes."""

    header_timeout_s = 10.0
    max_connections = 2048

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._header_timer = None
        self._waiting_since, self._partial = None, False
        if len(self.connections) > self.max_connections and not self._make_room():
            log.warning("connection refused: %d connections open (--max-connections)",
                        len(self.connections) - 1)
            transport.write(TOO_MANY)
            transport.close()
            return
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        self._partial = True
        super().data_received(data)
        if self._waiting_since is not None and self.conn.their_state is not h11.IDLE:
            self._headers_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_headers()       # kept alive: the next request has the same deadline

    def connection_lost(self, exc) -> None:
        self._headers_arrived()
        super().connection_lost(exc)

    # ------------------------------------------------------------------ the deadline
    def _await_headers(self) -> None:
        self._headers_arrived()
        self._waiting_since, self._partial = time.monotonic(), False
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _headers_arrived(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = self._waiting_since = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self._partial:           # an idle kept-alive connection: just close it
            self._close(None)
            return
        log.warning("closed a connection whose request headers took over %g s "
                    "(--header-timeout)", self.header_timeout_s)
        self._close(HEADERS_TOO_SLOW)

    def _close(self, answer: bytes | None) -> None:
        self._waiting_since = None
        if answer is not None and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(answer)
        self.transport.close()

    # ------------------------------------------------------------------ the cap
    def _make_room(self) -> bool:
        """Close the connection that has waited longest for its headers; False if none."""
        waiting = [other for other in self.connections if other is not self
                   and getattr(other, "_waiting_since", None) is not None
                   and not other.transport.is_closing()]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda other: other._waiting_since)
        log.warning("closed the slowest of %d connections to admit a new one "
                    "(--max-connections)", len(self.connections) - 1)
        oldest._headers_arrived()
        oldest._close(TOO_MANY)
        return True


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[GuardedProtocol]:
    return type("GuardedProtocol", (GuardedProtocol,),
                {"header_timeout_s": header_timeout_s, "max_connections": max_connections})


def descriptor_room() -> int:
    """Connections the process can hold: its descriptor limit (raised to the hard limit
    when allowed) less :data:`FD_RESERVE`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(soft - FD_RESERVE, 1)


class RepeatFilter(logging.Filter):
    """At most ``burst`` records of one logger and message (before its arguments) per
    ``window_s`` seconds; the next one let through says how many were dropped."""

    def __init__(self, burst: int = 5, window_s: float = 60.0, max_keys: int = 1024):
        super().__init__()
        self.burst, self.window_s, self.max_keys = burst, window_s, max_keys
        self._seen: dict[tuple, list] = {}       # key -> [window start, let through, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window_s:
                dropped = entry[2] if entry else 0
                if entry is None and len(self._seen) >= self.max_keys:
                    self._seen.clear()
                self._seen[key] = [now, 1, 0]
                if dropped:
                    record.msg = (f"{record.msg} [and {dropped} more like this in the last "
                                  f"{self.window_s:g} s, not logged]")
                return True
            if entry[1] < self.burst:
                entry[1] += 1
                return True
            entry[2] += 1
            return False


def log_config(level: str) -> dict:
    """uvicorn's logging config with RADAR's serve logger printed the same way, anything
    else that warns (asyncio's accept errors) too, and every line but the access log
    (one per request, asked for with --access-log) through a :class:`RepeatFilter`."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["repeats"] = {"()": RepeatFilter}
    config["handlers"]["default"].setdefault("filters", []).append("repeats")
    config["loggers"]["radar.serve"] = {"handlers": ["default"], "level": level.upper(),
                                        "propagate": False}
    config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config


def uvicorn_config(app, *, header_timeout_s: float, max_connections: int,
                   log_level: str = "info", **options):
    """The ``uvicorn.Config`` ``radar serve`` runs ``app`` with (``options``: host,
    port, access_log...); the cap is lowered to what the descriptor limit allows."""
    import uvicorn

    protocol = guarded_protocol(header_timeout_s, min(max_connections, descriptor_room()))
    return uvicorn.Config(app, http=protocol, log_level=log_level,
                          log_config=log_config(log_level), **options)
