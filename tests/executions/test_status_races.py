"""The status machine under races: verbs on the same row from two connections at once.

Each verb is a conditional UPDATE (executions/models.py), so when two of them race on one row
PostgreSQL serialises them on the row lock: exactly one changes it, the other matches nothing and
raises InvalidTransition, and the row carries one terminal event and at most one webhook delivery.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from executions.exceptions import InvalidTransition
from executions.models import Execution, ExecutionEvent
from tests.factories import make_execution, make_node
from webhooks.models import Delivery, Webhook

ROUNDS = 10


def race(execution_id: str, *verbs) -> list[str]:
    """Run each verb(its own copy of the row) in its own thread and connection at one moment; their outcomes."""
    start = threading.Barrier(len(verbs))
    outcomes: list[str] = [""] * len(verbs)

    def run(index: int, verb) -> None:
        try:
            row = fresh(execution_id)
            start.wait(timeout=30)
            verb(row)
            outcomes[index] = "changed"
        except InvalidTransition:
            outcomes[index] = "refused"
        except Exception as error:  # noqa: BLE001 - shown by the caller's assertion
            outcomes[index] = repr(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, verb)) for index, verb in enumerate(verbs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def fresh(execution_id: str) -> Execution:
    return Execution.objects.get(pk=execution_id)


def running(node) -> Execution:
    now = timezone.now()
    return make_execution(node, now=now, status="running", started_at=now, attempt=1)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_finishing_agent_leaves_exactly_one_terminal_status():
    node = make_node("racer")
    for _ in range(ROUNDS):
        execution = running(node)
        Webhook.objects.create(
            execution_id=execution.id, url="https://example.com/hook", secret=b"s", created_at=timezone.now()
        )
        Execution.objects.filter(pk=execution.id).update(webhook_registered=True)
        outcomes = race(
            execution.id,
            lambda row: row.complete({"done": True}, timezone.now()),
            lambda row: row.cancel(timezone.now(), "cancelled by a test"),
        )
        assert sorted(outcomes) == ["changed", "refused"], outcomes
        row = fresh(execution.id)
        winner = "succeeded" if outcomes[0] == "changed" else "cancelled"
        assert row.status == winner
        assert (row.result is not None) == (winner == "succeeded")
        terminal = ExecutionEvent.objects.filter(execution_id=execution.id).exclude(type="execution_queued")
        assert terminal.count() == 1
        assert Delivery.objects.filter(execution_id=execution.id).count() <= 1


@pytest.mark.django_db(transaction=True)
def test_two_agents_reporting_the_end_of_one_execution_record_it_once():
    node = make_node("twins")
    for _ in range(ROUNDS):
        execution = running(node)
        outcomes = race(
            execution.id,
            lambda row: row.complete({"from": "first"}, timezone.now()),
            lambda row: row.fail("boom", timezone.now()),
            lambda row: row.complete({"from": "third"}, timezone.now()),
        )
        assert sorted(outcomes) == ["changed", "refused", "refused"], outcomes
        assert fresh(execution.id).status in ("succeeded", "failed")
        assert ExecutionEvent.objects.filter(execution_id=execution.id).count() == 1
