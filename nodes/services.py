"""Registration, heartbeats and shutdown of agent nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from nodes.exceptions import NodeNotFound
from nodes.models import Node

REGISTERED_FIELDS = (
    "team_id", "base_url", "version", "deployment_type", "reasoners", "skills", "instance_id",
    "communication_config", "features", "metadata",
)  # fmt: skip
HEARTBEAT_LIFECYCLES = {"starting", "ready", "degraded"}


def register_node(data: dict[str, Any], now: datetime) -> tuple[Node, bool]:
    """Upsert a node from a validated registration; return it and whether its instance changed."""
    fields = {name: data[name] for name in REGISTERED_FIELDS if name in data}
    lifecycle = data.get("lifecycle_status") or Node.Lifecycle.STARTING
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=data["id"]).first()
        restarted = bool(node and node.instance_id and node.instance_id != fields.get("instance_id", ""))
        if node is None:
            node = Node(id=data["id"], registered_at=now)
        for name, value in fields.items():
            setattr(node, name, value)
        node.lifecycle_status = lifecycle
        node.last_heartbeat_at = now
        node.shutdown_at = None
        if restarted:
            node.restarted_at = now
        node.save()
    return node, restarted


def record_heartbeat(node_id: str, lifecycle: str | None, now: datetime) -> None:
    """One UPDATE: refresh liveness (and the reported lifecycle); NodeNotFound for an unknown id."""
    changes: dict[str, Any] = {"last_heartbeat_at": now}
    if lifecycle in HEARTBEAT_LIFECYCLES:
        changes["lifecycle_status"] = lifecycle
    # A shut-down node stays offline until it registers again (a late beat must not revive it).
    if not Node.objects.filter(pk=node_id, shutdown_at__isnull=True).update(**changes):
        if not Node.objects.filter(pk=node_id).exists():
            raise NodeNotFound(f"node '{node_id}' not found")


def shutdown(node_id: str, now: datetime) -> Node:
    """Mark the node offline after its graceful-shutdown notice."""
    updated = Node.objects.filter(pk=node_id).update(shutdown_at=now, lifecycle_status=Node.Lifecycle.OFFLINE)
    if not updated:
        raise NodeNotFound(f"node '{node_id}' not found")
    return Node.objects.get(pk=node_id)
