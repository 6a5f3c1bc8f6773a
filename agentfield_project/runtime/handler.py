"""Django's ASGI handler with request threads that are reused, and given back while a request waits.

Django runs each request's sync code (views, sync middleware, signals) in a thread of its own:
`ASGIHandler.__call__` opens a ThreadSensitiveContext, and asgiref then starts a new thread for
that request's executor and, when the request ends, another thread to join it. Both thread
starts block the event loop until the new thread has run, which under load costs more than the
view itself. Here each request's sync code still runs on one thread at a time (so its database
connection and thread-locals behave exactly as before), but the thread comes from a free list,
only when the request first needs one, and goes back to it when the request is done.

A request that then waits for a long time (a synchronous execute, an event stream, a held
status poll) calls `release_request_thread()`: its database connections are closed (returned to
the pool) and its thread goes back to the free list until its next sync call borrows one again.
A thousand open streams thus hold no thread and no connection.
"""

from __future__ import annotations

import contextvars
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

T = TypeVar("T")

# Idle threads kept for later requests; a burst beyond this is served by new threads, which
# exit once their request is done.
MAX_IDLE_THREADS = 64
# Threads lent at once: beyond this a request's sync call waits for a thread to come back
# (back-pressure, like a WSGI server's thread count) instead of starting one per request.
MAX_THREADS = 64


class RequestThreads:
    """A bounded free list of single-thread executors, one lent to each request at a time.

    Only the event loop's thread calls its methods, so it needs no lock.
    """

    def __init__(self, max_idle: int = MAX_IDLE_THREADS, max_threads: int = MAX_THREADS) -> None:
        self.max_idle = max_idle
        self.max_threads = max_threads
        self._idle: list[ThreadPoolExecutor] = []
        self._lent = 0
        self._waiting: deque[Callable[[ThreadPoolExecutor], None]] = deque()

    def acquire(self) -> ThreadPoolExecutor | None:
        """An executor no other request is using, or None when `max_threads` are lent."""
        if self._idle:
            self._lent += 1
            return self._idle.pop()
        if self._lent < self.max_threads:
            self._lent += 1
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        return None

    def when_free(self, take: Callable[[ThreadPoolExecutor], None]) -> None:
        """Call `take(executor)` with the next executor given back (in the order of asking)."""
        self._waiting.append(take)

    def release(self, executor: ThreadPoolExecutor) -> None:
        """Give back an executor whose request has ended or is waiting; a request waiting for one gets it."""
        if self._waiting:
            self._waiting.popleft()(executor)
            return
        self._lent -= 1
        if len(self._idle) < self.max_idle:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)  # the thread exits by itself; never join on the loop

    def idle_count(self) -> int:
        return len(self._idle)

    def lent_count(self) -> int:
        return self._lent


class RequestThread(Executor):
    """One request's thread: borrowed from the free list at its first sync call, given back by `give_back()`.

    Only the event loop's thread submits work or gives the thread back, and a request awaits each
    sync call before the next, so at most one call runs at a time and the thread is idle whenever
    it is given back.
    """

    def __init__(self, threads: RequestThreads) -> None:
        self._threads = threads
        self._lent: ThreadPoolExecutor | None = None

    @property
    def holds_thread(self) -> bool:
        return self._lent is not None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._lent is None:
            self._lent = self._threads.acquire()
        if self._lent is not None:
            return self._lent.submit(fn, *args, **kwargs)
        result: Future = Future()

        def take(executor: ThreadPoolExecutor) -> None:
            if not result.set_running_or_notify_cancel():  # the request was cancelled meanwhile
                self._threads.release(executor)
                return
            self._lent = executor
            _copy_when_done(executor.submit(fn, *args, **kwargs), result)

        self._threads.when_free(take)
        return result

    def give_back(self) -> None:
        if self._lent is not None:
            self._threads.release(self._lent)
            self._lent = None


def _copy_when_done(source: Future, target: Future) -> None:
    def copy(done: Future) -> None:
        error = done.exception()
        if error is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)


_current: contextvars.ContextVar[RequestThread | None] = contextvars.ContextVar(
    "agentfield_request_thread", default=None
)


async def release_request_thread() -> None:
    """Close this request's database connections and give its thread back until its next sync call.

    For a request about to wait (on the event hub): while it waits it holds neither a pooled
    database connection nor an OS thread. Outside PooledThreadsASGIHandler (Django's test client,
    whose connection may hold the test's transaction) it does nothing.
    """
    request_thread = _current.get()
    if request_thread is None or not request_thread.holds_thread:
        return
    await sync_to_async(connections.close_all)()
    request_thread.give_back()


# Threads for the short reads of waiting requests (a few milliseconds each): they must not use a
# request thread (the waiting request gave its own back) nor the event loop's default executor.
WAIT_READ_THREADS = 4
_wait_reads = ThreadPoolExecutor(WAIT_READ_THREADS, thread_name_prefix="wait-read")


async def read_while_waiting(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` (a short database read) on a small shared pool; its connection goes back at once."""

    def closing() -> T:
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return await sync_to_async(closing, thread_sensitive=False, executor=_wait_reads)()


class PooledThreadsASGIHandler(ASGIHandler):
    """ASGIHandler whose requests borrow their thread from a RequestThreads free list, lazily."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        request_thread = RequestThread(self.threads)
        token = _current.set(request_thread)
        try:
            # Django's handle() awaits everything the request started, so the thread is idle
            # again when this block ends.
            async with ThreadSensitiveContext(executor=request_thread):
                await self.handle(scope, receive, send)
        finally:
            _current.reset(token)
            request_thread.give_back()


def get_asgi_application() -> PooledThreadsASGIHandler:
    """django.core.asgi.get_asgi_application with the pooled-threads handler."""
    django.setup(set_prefix=False)
    return PooledThreadsASGIHandler()
