"""A status callback is the reporting instance's sign of life when its heartbeats stall (nodes/services.py).

Reproduces bench scenario 6 on a slow host: the SDK agent fanning out to 1,000 children declared
itself degraded and stopped heart-beating while its children kept reporting; within the liveness
window its executions, the fan-out's parent among them, were taken for lost and re-queued.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import recovery
from executions.models import Execution
from nodes import services
from nodes.models import Node, NodeInstance
from tests.factories import make_execution, make_instance, make_node

pytestmark = pytest.mark.django_db

ALIVE = 7.0


def running_on(node, instance_id: str = "instance-1") -> Execution:
    now = timezone.now()
    values = {"status": "running", "attempt": 1, "started_at": now, "node_instance_id": instance_id}
    return make_execution(node, now=now, **values)


def report(api, execution: Execution, body: dict):
    return api.post(f"/api/v1/executions/{execution.id}/status", data=json.dumps(body), content_type="application/json")


def beat_of(node: Node, instance_id: str = "instance-1"):
    return NodeInstance.objects.get(node=node, instance_id=instance_id).last_heartbeat_at


def test_a_busy_instance_that_stopped_beating_but_reports_keeps_its_work(api):
    node = make_node(now=timezone.now() - timedelta(seconds=60))  # its last beat: a minute ago
    parent, child = running_on(node), running_on(node)
    assert report(api, child, {"status": "succeeded", "result": {"index": 1}}).status_code == 200
    assert recovery.recover(timezone.now(), alive_seconds=ALIVE, grace_seconds=300) == 0
    assert Execution.objects.get(pk=parent.pk).status == "running"
    assert Node.objects.get(pk=node.pk).last_heartbeat_at > timezone.now() - timedelta(seconds=ALIVE)
    body = api.get(f"/api/v1/nodes/{node.id}").json()
    assert body["health_status"] == "active"


def test_progress_reports_count_too(api):
    node = make_node(now=timezone.now() - timedelta(seconds=60))
    execution = running_on(node)
    assert report(api, execution, {"status": "running", "progress": 40}).status_code == 200
    assert beat_of(node) > timezone.now() - timedelta(seconds=ALIVE)


def test_only_the_reporting_instance_is_refreshed(api):
    long_ago = timezone.now() - timedelta(seconds=60)
    node = make_node(now=long_ago)
    make_instance(node, "instance-2", last_heartbeat_at=long_ago)
    quiet = running_on(node, "instance-2")
    assert report(api, running_on(node), {"status": "succeeded", "result": {}}).status_code == 200
    assert beat_of(node, "instance-2") == long_ago
    assert recovery.recover(timezone.now(), alive_seconds=ALIVE, grace_seconds=300) == 1
    assert Execution.objects.get(pk=quiet.pk).status == "queued"


def test_a_refused_report_is_no_sign_of_life(api):
    long_ago = timezone.now() - timedelta(seconds=60)
    node = make_node(now=long_ago)
    execution = running_on(node)
    assert report(api, execution, {"status": "bogus"}).status_code == 400
    assert beat_of(node) == long_ago


def test_signs_are_recorded_at_most_once_a_second_per_instance():
    long_ago = timezone.now() - timedelta(seconds=60)
    node = make_node(now=long_ago)
    first = timezone.now()
    services.record_sign_of_life(node.id, "instance-1", first)
    services.record_sign_of_life(node.id, "instance-1", first + timedelta(seconds=0.5))
    assert beat_of(node) == first


def test_no_sign_revives_an_instance_that_shut_down_or_names_no_instance():
    long_ago = timezone.now() - timedelta(seconds=60)
    node = make_node(now=long_ago, shutdown_at=long_ago, lifecycle_status=Node.Lifecycle.OFFLINE)
    services.record_sign_of_life(node.id, "instance-1", timezone.now())
    services.record_sign_of_life(node.id, "", timezone.now())
    assert beat_of(node) == long_ago
    assert NodeInstance.objects.get(node=node).shutdown_at == long_ago
