"""agentfield_project/postgres/loop_db.py and the SDK's routes answered on the event loop with it.

A plain heartbeat, status poll, memory get or memory set (the SDK's) needs no request thread: its
one statement runs on a loop connection. Anything else goes to the thread path, which answers as
before: a refusal, an unknown node, an owner or key set not cached, a poll that needs another
query, a loop connection that broke, the database away.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Executor
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from agentfield_project.postgres import availability, loop_db
from agentfield_project.runtime import direct
from agentfield_project.runtime.sync_path import SyncPath
from executions.models import MemoryEntry, MemoryEvent, Status
from nodes import auth, ownership
from nodes.models import Node, NodeInstance
from tests.agentfield_project.test_sync_path import Recorder, call, scope
from tests.factories import make_execution, make_node

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json")]
BEAT = json.dumps({"status": "ready"}).encode()
COOKIE = (b"cookie", b"theme=dark")  # no session: only sends the request down Django's whole path


class Counting(Executor):
    """A request pool that counts what it was given (and runs it, in a thread of its own)."""

    def __init__(self, pool: Executor) -> None:
        self.pool = pool
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs):
        self.submitted += 1
        return self.pool.submit(fn, *args, **kwargs)


def sync_path() -> tuple[SyncPath, list[Counting]]:
    app = SyncPath(Recorder(), threads=1)
    app.pool, app.express_pool = Counting(app.pool), Counting(app.express_pool)
    return app, [app.pool, app.express_pool]


def threads_used(pools: list[Counting]) -> int:
    return sum(pool.submitted for pool in pools)


def beat(app: SyncPath, node_id: str = "hot", key: str | None = None) -> tuple[int, dict]:
    """One heartbeat, on a loop of its own (as each test request is)."""
    return asyncio.run(beat_on(app, node_id, key))


async def beat_on(app: SyncPath, node_id: str = "hot", key: str | None = None) -> tuple[int, dict]:
    headers = HEADERS + ([(b"x-api-key", key.encode())] if key else [])
    status, _, content = await call(app, scope("POST", f"/api/v1/nodes/{node_id}/heartbeat", headers), BEAT)
    return status, json.loads(content)


def loop_backends(expected: int) -> int:
    """The loop connections' server processes, once there are `expected` of them (a closed connection's
    backend leaves pg_stat_activity a moment after the socket closes), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                [loop_db.APPLICATION_NAME],
            )
            count = cursor.fetchone()[0]
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_a_plain_heartbeat_is_answered_on_the_event_loop_without_a_request_thread():
    make_node("hot", now=timezone.now() - timedelta(minutes=5), lifecycle_status=Node.Lifecycle.STARTING)
    app, pools = sync_path()
    status, body = beat(app)
    assert (status, body["success"], body["message"]) == (200, True, "heartbeat received")
    assert threads_used(pools) == 0
    node, instance = Node.objects.get(pk="hot"), NodeInstance.objects.get(node_id="hot")
    assert timezone.now() - node.last_heartbeat_at < timedelta(seconds=30)
    assert timezone.now() - instance.last_heartbeat_at < timedelta(seconds=30)
    assert node.lifecycle_status == instance.lifecycle_status == "ready"


def test_what_the_loop_cannot_answer_is_answered_by_the_thread_path():
    app, pools = sync_path()
    assert beat(app, "gone")[0] == 404 and threads_used(pools) == 1  # an unknown node: its 404 and register again
    _, admin_key = auth.issue_key("admin")
    agent, agent_key = auth.issue_key("agent", role="agent")
    make_node("hot", owner_key=agent)
    make_node("theirs")
    assert beat(app, "hot", "afk_wrong")[0] == 401 and threads_used(pools) == 2
    assert beat(app, "hot", admin_key)[0] == 200 and threads_used(pools) == 3  # the key set, then its use, recorded
    assert beat(app, "hot", admin_key)[0] == 200 and threads_used(pools) == 3
    ownership.forget()
    assert beat(app, "hot", agent_key)[0] == 200 and threads_used(pools) == 4  # the node's owner, not cached yet
    assert beat(app, "hot", agent_key)[0] == 200 and threads_used(pools) == 4
    assert beat(app, "theirs", agent_key)[0] == 403 and threads_used(pools) == 5  # not its node


def test_a_loop_connection_that_broke_is_discarded_and_the_beat_still_answered():
    make_node("hot")
    app, pools = sync_path()
    params = {**connection.get_connection_params(), "autocommit": True}
    params.pop("cursor_factory")

    async def beats() -> list[int]:
        statuses = [(await beat_on(app))[0]]
        with psycopg.connect(**params) as admin:  # the server drops the loop's connection (a restart, a proxy)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [loop_db.APPLICATION_NAME],
            )
        statuses.append((await beat_on(app))[0])
        used = threads_used(pools)
        statuses.append((await beat_on(app))[0])
        return [*statuses, used, threads_used(pools)]

    first, after_the_drop, then, used_after_drop, used_at_end = asyncio.run(beats())
    assert (first, after_the_drop, then) == (200, 200, 200)
    assert used_after_drop == 1 and used_at_end == 1  # only the beat on the broken connection took a thread


def test_while_the_database_is_known_to_be_away_the_beat_gets_the_thread_paths_503(monkeypatch):
    make_node("hot")
    app, pools = sync_path()
    monkeypatch.setattr(availability.web, "circuit_open", lambda: True)
    status, body = beat(app)
    assert (status, body["code"], threads_used(pools)) == (503, availability.CODE, 1)


def test_loop_connections_belong_to_their_loop_and_are_bounded():
    database = loop_db.LoopDatabase(size=1)

    async def concurrently() -> list:
        slow = database.fetchall("SELECT pg_sleep(0.3), 1", {})
        await asyncio.sleep(0)
        return await asyncio.gather(slow, database.fetchall("SELECT 2", {}))

    try:
        assert asyncio.run(database.fetchall("SELECT %(n)s::int", {"n": 1})) == [(1,)]
        assert database.connection_count() == 1 and loop_backends(1) == 1
        first, second = asyncio.run(concurrently())  # a new loop: the old loop's connection is closed
        assert first[0][1] == 1 and second is None  # the one connection was busy: the thread path's turn
        assert database.connection_count() == 1 and loop_backends(1) == 1
    finally:
        database.close()
    assert database.connection_count() == 0 and loop_backends(0) == 0


def test_a_statement_the_server_refuses_is_none_and_its_connection_is_not_kept():
    database = loop_db.LoopDatabase()
    try:
        assert asyncio.run(database.fetchall("SELECT * FROM no_such_table", {})) is None
        assert database.connection_count() == 0
    finally:
        database.close()


def poll(app: SyncPath, execution_id: str) -> tuple[int, dict]:
    status, _, content = asyncio.run(call(app, scope("GET", f"/api/v1/executions/{execution_id}", HEADERS[:1])))
    return status, json.loads(content)


def test_a_status_poll_is_answered_on_the_event_loop_as_the_thread_path_answers_it():
    node = make_node("hot")
    finished = make_execution(node, status=Status.SUCCEEDED, attempt=1, result={"n": 1})
    app, pools = sync_path()
    on_loop = poll(app, finished.id)
    assert threads_used(pools) == 0
    in_thread = asyncio.run(call(app, scope("GET", f"/api/v1/executions/{finished.id}", [*HEADERS[:1], COOKIE])))
    assert threads_used(pools) == 1  # the same poll with a cookie: Django's whole path
    assert on_loop == (in_thread[0], json.loads(in_thread[2]))
    assert on_loop[1]["status"] == "succeeded" and on_loop[1]["result"] == {"n": 1}


def test_a_poll_that_needs_more_than_its_row_is_answered_by_the_thread_path():
    node = make_node("hot")
    with_webhook = make_execution(node, status=Status.SUCCEEDED, attempt=1, webhook_registered=True)
    app, pools = sync_path()
    assert poll(app, with_webhook.id)[0] == 200 and threads_used(pools) == 1  # its webhook attempts: another query
    assert poll(app, "exec_missing")[0] == 404 and threads_used(pools) == 2


def test_direct_on_loop_only_for_views_that_have_a_loop_method():
    from executions.api.memory_views import MemoryGetView, MemorySetView
    from executions.api.views import ExecutionDetailView, LogsView
    from nodes.api.views import HeartbeatView, NodeDetailView

    assert direct.on_loop(HeartbeatView, "POST") and direct.on_loop(ExecutionDetailView, "GET")
    assert direct.on_loop(MemoryGetView, "POST") and direct.on_loop(MemorySetView, "POST")
    assert not direct.on_loop(HeartbeatView, "GET") and not direct.on_loop(LogsView, "POST")
    assert not direct.on_loop(NodeDetailView, "GET")


def test_psycopg_connect_errors_are_none(monkeypatch):
    database = loop_db.LoopDatabase()

    async def refused(**params):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", refused)
    assert asyncio.run(database.fetchall("SELECT 1", {})) is None and database.connection_count() == 0


def test_memory_set_and_get_are_answered_on_the_event_loop():
    node = make_node("hot")
    execution = make_execution(node, status=Status.RUNNING, attempt=1)
    context = [*HEADERS, (b"x-workflow-id", execution.run_id.encode()), (b"x-execution-id", execution.id.encode())]
    app, pools = sync_path()

    def post(path: str, body: dict) -> tuple[int, dict]:
        status, _, content = asyncio.run(call(app, scope("POST", path, context), json.dumps(body).encode()))
        return status, json.loads(content)

    status, stored = post("/api/v1/memory/set", {"key": "step", "data": {"done": 3}})
    assert (status, stored["data"], stored["scope"]) == (200, {"done": 3}, "workflow")
    status, got = post("/api/v1/memory/get", {"key": "step"})
    assert (status, got["data"], got["created_at"]) == (200, {"done": 3}, stored["created_at"])
    assert post("/api/v1/memory/get", {"key": "other"})[0] == 404
    assert threads_used(pools) == 0
    assert MemoryEntry.objects.get(key="step").data == {"done": 3}
    assert MemoryEvent.objects.filter(key="step", action="set").count() == 1
    assert post("/api/v1/memory/set", {"key": "step"})[0] == 400 and threads_used(pools) == 1  # no data: its 400
