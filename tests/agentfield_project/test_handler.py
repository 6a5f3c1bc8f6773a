"""Each ASGI request borrows a thread from a free list instead of starting (and joining) one."""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connection

from agentfield_project.asgi import django_application
from agentfield_project.runtime.handler import (
    PooledThreadsASGIHandler,
    RequestThread,
    RequestThreads,
    _current,
    release_request_thread,
)


def asgi_request(method: str, path: str, body: bytes = b"", headers: tuple = ()) -> tuple[int, dict, bytes]:
    """One request through the project's Django ASGI handler (its middleware and threads)."""
    if not any(name == b"transfer-encoding" for name, _ in headers):
        headers = ((b"content-length", str(len(body)).encode()), *headers)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(django_application(scope, receive, send))
    headers_sent = {key.decode().lower(): value.decode() for key, value in sent[0]["headers"]}
    return sent[0]["status"], headers_sent, b"".join(message.get("body", b"") for message in sent[1:])


def test_a_released_executor_is_lent_again():
    threads = RequestThreads(max_idle=4)
    first = threads.acquire()
    second = threads.acquire()
    assert first is not second
    threads.release(first)
    assert threads.acquire() is first
    threads.release(first)
    threads.release(second)
    assert threads.idle_count() == 2


def test_executors_beyond_the_idle_limit_are_shut_down_without_waiting():
    threads = RequestThreads(max_idle=1)
    kept, extra = threads.acquire(), threads.acquire()
    extra.submit(lambda: None).result()
    threads.release(kept)
    threads.release(extra)
    assert threads.idle_count() == 1
    assert extra._shutdown
    assert not kept._shutdown


@pytest.mark.django_db(transaction=True)
def test_sequential_requests_run_on_one_reused_thread():
    assert isinstance(django_application, PooledThreadsASGIHandler)
    assert asgi_request("GET", "/api/v1/health")[0] == 200
    before = threading.active_count()
    for _ in range(5):
        assert asgi_request("GET", "/api/v1/health")[0] == 200
    assert threading.active_count() == before
    assert django_application.threads.idle_count() >= 1


def test_beyond_the_thread_limit_a_sync_call_waits_for_a_thread_to_come_back():
    threads = RequestThreads(max_idle=4, max_threads=1)
    first, second = RequestThread(threads), RequestThread(threads)
    assert first.submit(lambda: "first").result(timeout=5) == "first"
    waiting = second.submit(lambda: threading.current_thread().name)
    assert not waiting.done() and threads.lent_count() == 1
    first.give_back()  # the thread goes straight to the waiting request
    assert waiting.result(timeout=5).startswith("request")
    assert second.holds_thread and threads.lent_count() == 1 and threads.idle_count() == 0
    second.give_back()
    assert threads.lent_count() == 0 and threads.idle_count() == 1


def test_a_request_cancelled_while_waiting_for_a_thread_does_not_keep_one():
    threads = RequestThreads(max_idle=4, max_threads=1)
    first, second = RequestThread(threads), RequestThread(threads)
    first.submit(lambda: None).result(timeout=5)
    waiting = second.submit(lambda: None)
    assert waiting.cancel()
    first.give_back()
    assert not second.holds_thread and threads.lent_count() == 0 and threads.idle_count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_released_request_thread_is_borrowed_again_only_when_needed():
    async def request() -> tuple[bool, bool, bool]:
        lent = RequestThread(django_application.threads)
        token = _current.set(lent)
        try:
            async with ThreadSensitiveContext(executor=lent):
                await sync_to_async(lambda: connection.cursor().execute("SELECT 1"))()
                held = lent.holds_thread
                await release_request_thread()
                released = not lent.holds_thread
                await sync_to_async(lambda: None)()
                return held, released, lent.holds_thread
        finally:
            _current.reset(token)
            lent.give_back()

    assert asyncio.run(request()) == (True, True, True)
