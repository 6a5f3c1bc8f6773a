"""Django's ASGI handler with request threads that are reused instead of started per request.

Django runs each request's sync code (views, sync middleware, signals) in a thread of its own:
`ASGIHandler.__call__` opens a ThreadSensitiveContext, and asgiref then starts a new thread for
that request's executor and, when the request ends, another thread to join it. Both thread
starts block the event loop until the new thread has run, which under load costs more than the
view itself. Here each request still has one thread to itself for its whole duration (so its
database connection and thread-locals behave exactly as before), but the thread comes from a
free list and goes back to it when the request is done.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler

# Idle threads kept for later requests; a burst beyond this is served by new threads, which
# exit once their request is done.
MAX_IDLE_THREADS = 64


class RequestThreads:
    """A free list of single-thread executors, one lent to each request at a time."""

    def __init__(self, max_idle: int = MAX_IDLE_THREADS) -> None:
        self.max_idle = max_idle
        self._idle: list[ThreadPoolExecutor] = []

    def acquire(self) -> ThreadPoolExecutor:
        """An executor no other request is using (only the event loop thread calls this)."""
        if self._idle:
            return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def release(self, executor: ThreadPoolExecutor) -> None:
        """Give back an executor whose request has ended."""
        if len(self._idle) < self.max_idle:
            self._idle.append(executor)
        else:
            executor.shutdown(wait=False)  # the thread exits by itself; never join on the loop

    def idle_count(self) -> int:
        return len(self._idle)


class PooledThreadsASGIHandler(ASGIHandler):
    """ASGIHandler whose requests borrow their thread from a RequestThreads free list."""

    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = self.threads.acquire()
        try:
            # Django's handle() awaits everything the request started, so the thread is idle
            # again when this block ends.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.release(executor)


def get_asgi_application() -> PooledThreadsASGIHandler:
    """django.core.asgi.get_asgi_application with the pooled-threads handler."""
    django.setup(set_prefix=False)
    return PooledThreadsASGIHandler()
