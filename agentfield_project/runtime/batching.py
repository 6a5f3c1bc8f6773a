"""Requests to a batched view, gathered on the event loop and answered together by a thread of their own.

The SDK posts its log lines one request at a time, fire-and-forget: a fan-out of a thousand
children sends about eight thousand of them, several hundred in flight at once. Each waited for
a request thread behind the submits, polls and callbacks, and the SDK agent's HTTP client spends
CPU on every request in flight (its pool matches each queued request against each connection):
the longer log posts took, the more of the agent's CPU they cost (bench scenario 6). Requests
for a view with `post_batch` (direct.py) instead join the batch being gathered, and threads of
their own answer each batch with one call of `post_batch` (for the log lines, one INSERT): no
wait for a request thread, one database round trip for many requests. A request is answered once
its batch has committed, so an accepted log line is stored, as before.

The SDK's step events (a start and an end per reasoner call) are batched like its log lines.
Submits (execute/async) are batched the same way: under load, concurrent submits each paid a
BEGIN, a node look-up, a COMMIT and a turn on the event counter's row lock (which serialised
them until commit); a batch pays these once (executions/services.submit_many).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentfield_project.runtime import direct

MAX_BATCH = 256
# Two batches of a view may be answered at once: while one waits on the database (its INSERT, its
# COMMIT), the other runs its Python. With one, the thread was the bound of the API's submits
# (bench scenario 3: busy 95% of the time, more than half of it waiting on PostgreSQL).
THREADS = 2
Request = tuple[dict[str, Any], dict[str, Any], bytes]  # (URL kwargs, WSGI environ, body)


class Batches:
    """Pending requests per batched view class; at most `threads` batches of a view at a time."""

    def __init__(self, max_batch: int = MAX_BATCH, threads: int = THREADS) -> None:
        self.max_batch = max_batch
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="request-batch")
        self._pending: dict[type, list[tuple[Request, asyncio.Future]]] = {}
        self._drains: dict[type, int] = {}  # batches of each view being answered now, at most `threads`

    async def answer(self, view_class: type, request: Request) -> direct.Response:
        """The response to `request`, once the batch it joined has been answered."""
        future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(view_class, []).append((request, future))
        if self._drains.get(view_class, 0) < self.threads:
            self._drains[view_class] = self._drains.get(view_class, 0) + 1
            asyncio.get_running_loop().create_task(self._drain(view_class))
        return await future

    async def _drain(self, view_class: type) -> None:
        loop = asyncio.get_running_loop()
        try:
            while pending := self._pending.get(view_class):
                batch, self._pending[view_class] = pending[: self.max_batch], pending[self.max_batch :]
                requests = [request for request, _ in batch]
                try:
                    answers = await loop.run_in_executor(self.pool, direct.respond_batch, view_class, requests)
                except Exception as error:  # noqa: BLE001 - respond_batch answers every error; this is a bug
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), answer in zip(batch, answers, strict=True):
                    if not future.done():  # a client that went away cancelled its future
                        future.set_result(answer)
        finally:
            self._drains[view_class] -= 1
