"""Waiting costs no thread and no connection: many sync executes and open streams leave the API serving.

Before, each waiting synchronous execute held a pooled database connection (twelve of them took
the API down with PoolTimeouts) and each open event stream held an OS thread.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from tests.executions.test_sse import session_cookie
from tests.processes import http, wait_until
from tests.sse_client import Stream

pytestmark = pytest.mark.e2e

WAITERS = 200
STREAMS = 300


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@contextmanager
def registered_node(url: str, node_id: str, base_url: str):
    """Register `node_id` at `base_url` and heart-beat for it every second until the block ends."""
    body = {"id": node_id, "base_url": base_url, "reasoners": [{"id": "work"}], "instance_id": "only"}
    assert http("POST", f"{url}/api/v1/nodes/register", body)[0] == 201
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            http("POST", f"{url}/api/v1/nodes/{node_id}/heartbeat", {"status": "ready", "instance_id": "only"})

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join(timeout=10)


def running_count(url: str) -> int:
    return http("GET", f"{url}/api/v1/executions?status=running&limit=500")[1]["count"]


def test_two_hundred_waiting_sync_executes_leave_the_api_serving(launch, stub_agent):
    # The agent answers 202 and never calls back on its own: every execute waits.
    url = launch.server(AGENTFIELD_SYNC_WAIT_SECONDS=120, AGENTFIELD_DB_POOL_SIZE=8)
    launch.dispatcher()
    pid = launch.server_process.pid
    with registered_node(url, "quiet", stub_agent.url), ThreadPoolExecutor(WAITERS) as clients:
        waits = [
            clients.submit(http, "POST", f"{url}/api/v1/execute/quiet.work", {"input": {"n": n}}, None, 180)
            for n in range(WAITERS)
        ]
        wait_until(lambda: running_count(url) == WAITERS, timeout=120, message="every execution to be running")
        time.sleep(1)
        assert threads_of(pid) < 100, "waiting requests must not hold threads"

        # Everything else still answers, with only 8 pooled connections for 200 waiters.
        assert http("GET", f"{url}/api/v1/health")[0] == 200
        accepted = http("POST", f"{url}/api/v1/execute/async/quiet.work", {"input": {}})
        assert accepted[0] == 202
        listed = http("GET", f"{url}/api/v1/executions?status=running&limit=500")[1]["executions"]
        assert http("GET", f"{url}/api/v1/executions/{listed[0]['execution_id']}")[0] == 200

        # Each waiter answers as soon as its agent reports.
        for execution in listed:
            result = {"status": "succeeded", "result": {"done": execution["execution_id"]}}
            assert http("POST", f"{url}/api/v1/executions/{execution['execution_id']}/status", result)[0] == 200
        answers = [wait.result(timeout=120) for wait in waits]
    assert [status for status, _, _ in answers] == [200] * WAITERS
    assert all(body["result"] == {"done": body["execution_id"]} for _, body, _ in answers)


def test_hundreds_of_open_event_streams_hold_no_threads(launch, db_url):
    cookie = session_cookie()
    url = launch.server()
    pid = launch.server_process.pid
    before = threads_of(pid)
    streams = []
    try:
        for _ in range(STREAMS):
            stream = Stream(url, headers=cookie, timeout=30)
            assert stream.status == 200
            streams.append(stream)
        for stream in streams:
            assert stream.next_frame().type == "connected"
        time.sleep(1)
        assert threads_of(pid) < before + 70, "open streams must not hold threads"
        assert http("GET", f"{url}/api/v1/health", timeout=10)[0] == 200
    finally:
        for stream in streams:
            stream.close()
