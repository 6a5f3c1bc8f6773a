"""Concurrency limits: a node's (and a reasoner's) in-flight executions never exceed its limit."""

from __future__ import annotations

import pytest

from executions import queue
from executions.models import Execution
from nodes import limits
from nodes.models import Node
from tests.factories import make_execution, make_node
from tests.http_fakes import SlowAgent
from tests.processes import http, wait_until

TERMS = {"lease_seconds": 60, "alive_seconds": 7}


@pytest.mark.parametrize(
    ("metadata", "parsed"),
    [
        ({"max_concurrency": 3}, (3, {})),
        ({"reasoner_concurrency": {"summarize": 2, "bad": 0, "worse": "x"}}, (None, {"summarize": 2})),
        ({"max_concurrency": True}, (None, {})),
        ({"other": 1}, None),
        (None, None),
    ],
)
def test_limits_come_from_registration_metadata(metadata, parsed):
    assert limits.parse(metadata) == parsed


def test_pick_fills_free_slots_in_order_and_skips_targets_at_their_limit():
    due = [("e1", "a"), ("e2", "a"), ("e3", "b"), ("e4", "b"), ("e5", "c")]
    assert limits.pick(due, {}, None, {"a": 1}, 10) == ["e1", "e3", "e4", "e5"]
    assert limits.pick(due, {"a": 1}, 3, {}, 10) == ["e1", "e2"]  # 3 - 1 held = 2 free
    assert limits.pick(due, {"b": 2}, None, {"b": 2}, 2) == ["e1", "e2"]
    assert limits.pick(due, {}, 2, {}, 10) == ["e1", "e2"]
    assert limits.pick(due, {"a": 5}, 3, {}, 10) == []


@pytest.mark.django_db
def test_a_limited_node_is_claimed_only_up_to_its_free_slots(now):
    node = make_node("limited", now=now, reasoners=("a", "b"), max_concurrency=2, target_concurrency={"a": 1})
    free = make_node("free", now=now)
    for target in ("a", "a", "b", "b"):
        make_execution(node, now=now, target_name=target)
    make_execution(free, now=now)
    fast = queue.claim("w", now, 10, limited=["limited"], **TERMS)
    assert [item.execution.node_id for item in fast] == ["free"]  # the common path skips limited nodes
    first = queue.claim_limited("w", now, "limited", (2, {"a": 1}), 10, **TERMS)
    assert sorted(item.execution.target_name for item in first) == ["a", "b"]
    assert queue.claim_limited("w", now, "limited", (2, {"a": 1}), 10, **TERMS) == []  # both slots held
    # The agent's 202 does not free a slot: it is held until the execution is terminal.
    b = next(item for item in first if item.execution.target_name == "b")
    b.execution.mark_running(b.execution.lease_token, b.instance_id, now)
    assert queue.claim_limited("w", now, "limited", (2, {"a": 1}), 10, **TERMS) == []
    b.execution.complete({"ok": True}, now)
    [third] = queue.claim_limited("w", now, "limited", (2, {"a": 1}), 10, **TERMS)
    assert third.execution.target_name == "b"  # "a" is still at its own limit of 1


@pytest.mark.django_db
def test_registration_metadata_sets_the_limits(api):
    body = {"id": "capped", "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "r"}],
            "metadata": {"max_concurrency": 4, "reasoner_concurrency": {"r": 2}}}  # fmt: skip
    assert api.post("/api/v1/nodes/register", body, format="json").status_code == 201
    node = Node.objects.get(pk="capped")
    assert (node.max_concurrency, node.target_concurrency) == (4, {"r": 2})


@pytest.mark.e2e
def test_four_dispatchers_never_exceed_a_limit_of_three(launch, db_url):
    agent = SlowAgent()
    try:
        # The stand-in agent does not heart-beat: keep its registration alive for the whole test.
        # With the default 7 s, a slow CI host left the last executions queued for a dead node.
        alive = {"AGENTFIELD_NODE_LIVENESS_SECONDS": 600}
        url = launch.server(**alive)
        for _ in range(4):
            launch.dispatcher(**alive)
        node = {
            "id": "capped",
            "base_url": agent.url,
            "reasoners": [{"id": "work"}],
            "metadata": {"max_concurrency": 3},
        }
        assert http("POST", f"{url}/api/v1/nodes/register", node)[0] == 201
        ids = [
            http("POST", f"{url}/api/v1/execute/async/capped.work", {"input": {"i": i}})[1]["execution_id"]
            for i in range(30)
        ]

        def finished() -> bool:
            return Execution.objects.filter(id__in=ids, status="succeeded").count() == 30

        wait_until(finished, timeout=120, message="30 executions through a limit of 3")
        assert agent.calls == 30
        assert agent.peak <= 3, f"the agent held {agent.peak} executions at once"
    finally:
        agent.stop()
