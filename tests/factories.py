"""Plain factory functions: rows with sensible defaults, every field overridable."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from django.utils import timezone

from executions import fairness
from executions.models import Execution
from nodes.models import Node, NodeInstance

_counter = itertools.count(1)


def make_node(
    id: str | None = None,
    *,
    now: datetime | None = None,
    reasoners: tuple[str, ...] = ("echo",),
    skills: tuple[str, ...] = ("shout",),
    **fields: Any,
) -> Node:
    """A registered node that heart-beat at `now` (default: the real clock)."""
    now = now or timezone.now()
    values: dict[str, Any] = {
        "id": id or f"node-{next(_counter)}",
        "base_url": "http://127.0.0.1:9",
        "reasoners": [{"id": name} for name in reasoners],
        "skills": [{"id": name} for name in skills],
        "instance_id": "instance-1",
        "lifecycle_status": Node.Lifecycle.READY,
        "registered_at": now,
        "last_heartbeat_at": now,
    }
    values.update(fields)
    node = Node.objects.create(**values)
    make_instance(node)
    return node


def make_instance(node: Node, instance_id: str | None = None, **fields: Any) -> NodeInstance:
    """An instance (process) of `node`; by default the one its registration describes."""
    values: dict[str, Any] = {
        "node": node,
        "instance_id": node.instance_id if instance_id is None else instance_id,
        "base_url": node.base_url,
        "lifecycle_status": node.lifecycle_status,
        "registered_at": node.restarted_at or node.registered_at,
        "last_heartbeat_at": node.last_heartbeat_at,
        "shutdown_at": node.shutdown_at,
    }
    values.update(fields)
    return NodeInstance.objects.create(**values)


def set_heartbeat(node: Node, moment: datetime, instance_id: str | None = None) -> None:
    """Move the last heartbeat of `node` (and of its instances, or only `instance_id`) to `moment`."""
    instances = NodeInstance.objects.filter(node=node)
    if instance_id is not None:
        instances = instances.filter(instance_id=instance_id)
    instances.update(last_heartbeat_at=moment)
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=moment)


def make_execution(node: Node | None = None, *, now: datetime | None = None, **fields: Any) -> Execution:
    """An execution of `node`'s first reasoner (a fresh node if none), queued and due at `now`."""
    now = now or timezone.now()
    node = node or make_node(now=now)
    number = next(_counter)
    values: dict[str, Any] = {
        "id": f"exec_test_{number:06d}",
        "run_id": f"run_test_{number:06d}",
        "node_id": node.id,
        "target_name": node.reasoner_ids()[0] if node.reasoners else node.skill_ids()[0],
        "target_type": "reasoner" if node.reasoners else "skill",
        "input": {"message": "hi"},
        "run_at": now,
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    values.setdefault("fair_seq", fairness.next_places([values["run_id"]])[0])  # as services._insert does
    return Execution.objects.create(**values)
