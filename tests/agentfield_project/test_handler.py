"""Each ASGI request borrows a thread from a free list instead of starting (and joining) one."""

from __future__ import annotations

import threading

import pytest

from agentfield_project.asgi import django_application
from agentfield_project.handler import PooledThreadsASGIHandler, RequestThreads
from tests.agentfield_project.test_inline import asgi_request


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
