"""The fair order of the queue (executions/fairness.py): priority first, then runs take turns."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from executions import queue, services
from executions.dispatcher import ExecutionDispatcher
from executions.models import Execution, FairClock
from tests.factories import make_execution, make_node, set_heartbeat

LEASE = 60.0
ALIVE = 7.0


def claim(now, limit: int):
    return [item.execution for item in queue.claim("w", now, limit, lease_seconds=LEASE, alive_seconds=ALIVE)]


def fan_out(node, now, run_id: str, count: int, **fields) -> list[Execution]:
    return [make_execution(node, now=now, run_id=run_id, **fields) for _ in range(count)]


@pytest.mark.django_db
def test_a_run_takes_the_places_after_its_own_last_one(now):
    node = make_node(now=now)
    places = [execution.fair_seq for execution in fan_out(node, now, "run_big", 5)]
    assert places == [1, 2, 3, 4, 5]
    assert make_execution(node, now=now, run_id="run_other").fair_seq == 1  # not behind the big run


@pytest.mark.django_db
def test_a_run_arriving_later_is_served_alongside_a_big_backlog_not_after_it(now):
    node = make_node(now=now)
    fan_out(node, now, "run_big", 200)
    served = [execution.run_id for execution in claim(now, 20)]  # the claims reach place 20
    assert served == ["run_big"] * 20
    assert FairClock.objects.get().value == 20
    small = fan_out(node, now, "run_small", 3)
    assert [execution.fair_seq for execution in small] == [21, 22, 23]
    served = [execution.run_id for execution in claim(now, 6)]
    # Places 21, 21, 22, 22, 23, 23: the small run is done after six claims, not after 180.
    assert sorted(served) == ["run_big"] * 3 + ["run_small"] * 3


@pytest.mark.django_db
def test_higher_priority_is_claimed_first_and_fifo_within_a_priority(now):
    node = make_node(now=now)
    backlog = fan_out(node, now, "run_low", 5)
    urgent = [make_execution(node, now=now, priority=10) for _ in range(2)]
    assert [execution.id for execution in claim(now, 2)] == [execution.id for execution in urgent]
    assert [execution.id for execution in claim(now, 5)] == [execution.id for execution in backlog]


@pytest.mark.django_db
def test_the_clock_never_moves_back(now):
    node = make_node(now=now)
    fan_out(node, now, "run_a", 10)
    claim(now, 10)
    late_retry = make_execution(node, now=now, run_id="run_old", fair_seq=3)  # e.g. a retry that kept its place
    assert [execution.id for execution in claim(now, 1)] == [late_retry.id]
    assert FairClock.objects.get().value == 10


@pytest.mark.django_db
def test_places_work_without_a_clock_row(now):
    FairClock.objects.all().delete()  # a flushed database: the first claim creates it
    node = make_node(now=now)
    assert make_execution(node, now=now).fair_seq == 1
    claim(now, 1)
    assert FairClock.objects.get().value == 1


# -- the case: a 5,000-execution backlog of one run, 10 executions of another ------------


def test_ten_executions_of_a_new_run_finish_long_before_a_backlog_of_5000(transactional_db, stub_agent, api):
    stub_agent.status, stub_agent.body = 200, {"ok": True}  # answered inline: each call finishes at once
    now = timezone.now()
    node = make_node("fan", now=now, base_url=stub_agent.url)
    # The same path as POST /execute/async (without 5,000 HTTP round trips), from four threads as
    # an agent's concurrent app.calls would: racing inserts of one run may share a place.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda part: submit_many("fan.echo", "run_big", part, now), range(4)))
    loop = ExecutionDispatcher("fair-dispatcher", concurrency=8)
    try:
        serve_until(loop, node, lambda: done("run_big") >= 40)
        small = [
            api.post("/api/v1/execute/async/fan.echo", {"input": {"n": n}}, format="json", HTTP_X_RUN_ID="run_small")
            for n in range(10)
        ]
        assert {answer.status_code for answer in small} == {202}
        serve_until(loop, node, lambda: done("run_small") == 10)
        big_done_when_small_finished = done("run_big")
    finally:
        loop.drain(timeout=10)
    # FIFO would have served all 5,000 first; taking turns, about ten of the big run went alongside.
    assert big_done_when_small_finished < 40 + 100
    assert Execution.objects.filter(run_id="run_big", status="queued").count() > 4700


def submit_many(target: str, run_id: str, part: int, now) -> None:
    try:
        for index in range(1250):
            sub = services.build_submission(target, {"input": {"i": part * 1250 + index}}, {"X-Run-ID": run_id})
            services.submit(sub, now)
    finally:
        connection.close()  # this thread's own connection


def done(run_id: str) -> int:
    return Execution.objects.filter(run_id=run_id, status="succeeded").count()


def serve_until(loop: ExecutionDispatcher, node, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the dispatcher did not get there in time"
        set_heartbeat(node, timezone.now())  # the agent is alive (its heartbeats, which a stub does not send)
        if not loop.run_once():
            time.sleep(0.01)
