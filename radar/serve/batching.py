"""Micro-batching: concurrent requests share one model call, run off the event loop.

Requests join a queue; one worker task takes whole requests from its head until the
batch holds ``max_batch_sessions`` sessions or ``wait_s`` has passed since the worker
started collecting (no wait at all when the queue already fills a batch), scores
them with a single call of ``score_fn`` in a thread (``asyncio.to_thread``), and
hands each request its own results. One model call runs at a time; requests that
arrive meanwhile form the next batch, so under load batches grow by themselves. A
request larger than ``max_batch_sessions`` is scored in chunks of that size, and
after each chunk the rest of it goes to the back of the queue: a small request
waits for one chunk, not for the whole large one. A request whose caller stops
waiting (its ``submit`` is cancelled: the client went away) leaves the queue at once
and its remaining chunks are never scored. When more than ``max_queued_sessions``
wait, new requests are refused (:class:`QueueFull`, a 503 with Retry-After) instead
of piling up in memory.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ScoreFn = Callable[[list[list[Any]]], list[list[Any]]]
BatchHook = Callable[[int, int, float], None]     # (sessions, requests, seconds)


class QueueFull(Exception):
    """Too many sessions are already waiting for the model."""


class BatcherClosed(Exception):
    """The server is shutting down; the request was not scored."""


@dataclass(eq=False)      # compared by identity: the queue finds an item to drop it
class _Pending:
    sessions: list
    future: asyncio.Future
    taken: int = 0                  # sessions handed to the model so far
    results: list = field(default_factory=list)

    @property
    def left(self) -> int:
        return len(self.sessions) - self.taken


Chunk = tuple[_Pending, int, int]       # (request, start, end) of its sessions


class MicroBatcher:
    """Collects requests into batches for ``score_fn`` (see the module docstring)."""

    def __init__(self, score_fn: ScoreFn, *, max_batch_sessions: int, wait_s: float,
                 max_queued_sessions: int, on_batch: BatchHook | None = None):
        if max_batch_sessions < 1:
            raise ValueError("max_batch_sessions must be >= 1")
        self.score_fn, self.max_batch, self.wait_s = score_fn, max_batch_sessions, wait_s
        self.max_queued, self.on_batch = max_queued_sessions, on_batch
        self._items: collections.deque[_Pending] = collections.deque()
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closed = False

    @property
    def queued_sessions(self) -> int:
        return self._queued

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="radar-batcher")

    async def stop(self) -> None:
        """Stop taking work; requests still queued fail with :class:`BatcherClosed`."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._items:
            item = self._items.popleft()
            if not item.future.done():
                item.future.set_exception(BatcherClosed("the server is shutting down"))
        self._queued = 0

    async def submit(self, sessions: list) -> list:
        """Score ``sessions`` (with whatever else is queued); their results, in order.
        Cancelling the call takes the request out of the queue."""
        if self._closed or self._wake is None:
            raise BatcherClosed("the scorer is not running")
        if not sessions:
            return []
        if self._queued and self._queued + len(sessions) > self.max_queued:
            raise QueueFull(f"{self._queued} sessions are already waiting for the model "
                            f"(limit {self.max_queued})")
        item = _Pending(sessions, asyncio.get_running_loop().create_future())
        self._items.append(item)
        self._queued += len(sessions)
        self._wake.set()
        try:
            return await item.future
        except asyncio.CancelledError:
            self._drop(item)
            raise

    def _drop(self, item: _Pending) -> None:
        """Take ``item`` out of the queue; none of its sessions will be scored any more."""
        if item in self._items:
            self._items.remove(item)
            self._queued -= item.left
        item.taken = len(item.sessions)

    async def _collect(self) -> list[Chunk]:
        """Wait for work, then for more up to the batch size or the wait window."""
        while not self._items:
            self._wake.clear()
            await self._wake.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while self._queued < self.max_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                break
        batch: list[Chunk] = []
        room = self.max_batch
        while self._items and room > 0 and (not batch or self._items[0].left <= room):
            item = self._items.popleft()
            size = min(item.left, room)        # less than all of it: only a large request
            batch.append((item, item.taken, item.taken + size))
            item.taken += size
            self._queued -= size
            room -= size
            if item.left:
                self._items.append(item)       # the rest waits its turn behind the others
        return batch

    async def _run(self) -> None:
        while True:
            batch = [chunk for chunk in await self._collect() if not chunk[0].future.done()]
            if not batch:
                continue
            n_sessions = sum(end - start for _, start, end in batch)
            began = time.perf_counter()
            try:
                results = await asyncio.to_thread(
                    self.score_fn, [item.sessions[start:end] for item, start, end in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for item, _, _ in batch:
                    self._drop(item)
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(n_sessions, len(batch), time.perf_counter() - began)
            for (item, _, _), result in zip(batch, results):
                if item.future.done():
                    continue
                item.results.extend(result)
                if len(item.results) == len(item.sessions):
                    item.future.set_result(item.results)
