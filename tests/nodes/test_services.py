"""Registration, heartbeats and shutdown as services, and the SQL form of the liveness policy."""

from __future__ import annotations

from datetime import timedelta

import pytest

from nodes import liveness, services
from nodes.exceptions import NodeNotFound
from nodes.models import Node

pytestmark = pytest.mark.django_db


def data(**overrides) -> dict:
    return {"id": "echo", "base_url": "http://localhost:8001", "instance_id": "first", **overrides}


def test_register_creates_then_upserts_without_reporting_a_restart_for_the_same_instance(now):
    node, restarted = services.register_node(data(version="1"), now)
    assert not restarted and node.registered_at == now and node.last_heartbeat_at == now
    later = now + timedelta(minutes=1)
    node, restarted = services.register_node(data(version="2"), later)
    assert not restarted and node.version == "2"
    assert node.registered_at == now and node.last_heartbeat_at == later and node.restarted_at is None


def test_register_with_a_new_instance_id_records_the_restart(now):
    services.register_node(data(), now)
    node, restarted = services.register_node(data(instance_id="second"), now + timedelta(seconds=5))  # same address
    assert restarted and node.restarted_at == now + timedelta(seconds=5)


def test_register_after_a_node_without_instance_id_is_not_a_restart(now):
    services.register_node(data(instance_id=""), now)
    assert services.register_node(data(), now)[1] is False


def test_register_clears_a_previous_shutdown(now):
    services.register_node(data(), now)
    services.shutdown("echo", None, now)
    node, _ = services.register_node(data(), now + timedelta(seconds=1))
    assert node.shutdown_at is None
    assert node.health_status(now + timedelta(seconds=1), 7) == liveness.ACTIVE


def test_heartbeat_refreshes_liveness_and_records_a_known_lifecycle(now):
    services.register_node(data(), now)
    services.record_heartbeat("echo", None, "ready", now + timedelta(seconds=2))
    node = Node.objects.get(pk="echo")
    assert node.last_heartbeat_at == now + timedelta(seconds=2) and node.lifecycle_status == "ready"


def test_heartbeat_ignores_an_unknown_lifecycle_word(now):
    services.register_node(data(), now)
    services.record_heartbeat("echo", None, "offline", now)  # offline only comes from a shutdown notice
    services.record_heartbeat("echo", None, "dancing", now)
    assert Node.objects.get(pk="echo").lifecycle_status == "starting"


def test_heartbeat_of_an_unknown_node_raises_not_found(now):
    with pytest.raises(NodeNotFound, match="node 'ghost' not found"):
        services.record_heartbeat("ghost", None, "ready", now)


def test_heartbeat_after_shutdown_leaves_the_node_offline(now):
    services.register_node(data(), now)
    services.shutdown("echo", None, now)
    services.record_heartbeat("echo", None, "ready", now + timedelta(seconds=1))
    node = Node.objects.get(pk="echo")
    assert node.lifecycle_status == "offline" and node.last_heartbeat_at == now


def test_shutdown_of_an_unknown_node_raises_not_found(now):
    with pytest.raises(NodeNotFound):
        services.shutdown("ghost", None, now)


@pytest.mark.parametrize("age", [0, 6.999, 7, 7.001, 3600])
@pytest.mark.parametrize("shut_down", [False, True])
def test_the_sql_filter_agrees_with_the_pure_policy(now, age, shut_down):
    services.register_node(data(), now - timedelta(seconds=age))
    if shut_down:
        services.shutdown("echo", None, now)
    expected = liveness.health_status(now - timedelta(seconds=age), now if shut_down else None, now, 7)
    for health in liveness.HEALTH_STATUSES:
        matched = Node.objects.with_health(health, now, 7).exists()
        assert matched == (health == expected), (health, expected)
    assert Node.objects.alive(now, 7).exists() == (expected == liveness.ACTIVE)
