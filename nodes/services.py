"""Registration, heartbeats and shutdown of agent nodes and of the instances (processes) serving them."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from agentfield_project.postgres import loop_db
from nodes import limits, ownership, policy
from nodes.exceptions import NodeNotFound, NotPermitted
from nodes.models import ApiKey, Node, NodeInstance
from nodes.policy import Principal

logger = logging.getLogger(__name__)

REGISTERED_FIELDS = (
    "team_id", "base_url", "version", "deployment_type", "reasoners", "skills", "instance_id",
    "communication_config", "features", "metadata",
)  # fmt: skip
HEARTBEAT_LIFECYCLES = {"starting", "ready", "degraded"}


def register_node(data: dict[str, Any], now: datetime, principal: Principal = policy.OPEN) -> tuple[Node, bool]:
    """Upsert a node and its registering instance; return the node and whether a process restarted.

    A new instance replaces the instances it must be the restart of: one at its own address (that
    process is gone), and any that are no longer alive. Their rows are removed, so the recovery
    loop re-queues their work at once (same execution ids) instead of after the liveness window.
    Live instances at other addresses are other processes serving the same node: they stay.
    """
    fields = {name: data[name] for name in REGISTERED_FIELDS if name in data}
    instance_id = fields.get("instance_id", "")
    lifecycle = data.get("lifecycle_status") or Node.Lifecycle.STARTING
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=data["id"]).first()
        owner = node.owner_key_id if node else None
        reserved_by = None if owner else reservation_of(data["id"])
        if not policy.may_register(principal, owner, reserved_by):
            raise NotPermitted(f"node '{data['id']}' belongs to another agent key")
        if node is None:
            node = Node(id=data["id"], registered_at=now)
        if owner is None and principal.is_agent:
            node.owner_key_id = principal.key_id  # the first agent key to register a node id owns it
            ownership.forget(node.id)
        for name, value in fields.items():
            setattr(node, name, value)
        if (declared := limits.parse(fields.get("metadata"))) is not None:
            node.max_concurrency, node.target_concurrency = declared
        node.lifecycle_status = lifecycle
        node.last_heartbeat_at = now
        node.shutdown_at = None
        others = NodeInstance.objects.filter(node_id=node.id).exclude(instance_id=instance_id)
        alive = others.alive(now, settings.AGENTFIELD_NODE_LIVENESS_SECONDS).exclude(base_url=node.base_url)
        replaced = others.exclude(pk__in=alive.values("pk"))
        # An agent that sends no instance id cannot tell us it restarted.
        restarted = replaced.exclude(instance_id="").exists()
        if restarted:
            node.restarted_at = now
        node.save()
        replaced.delete()
        NodeInstance.objects.update_or_create(
            node_id=node.id,
            instance_id=instance_id,
            defaults={
                "base_url": node.base_url,
                "lifecycle_status": lifecycle,
                "registered_at": now,
                "last_heartbeat_at": now,
                "shutdown_at": None,
            },
        )
    return node, restarted


# One round trip: refresh the instance (all of the node's live instances when the beat names
# none), then the node's summary, only if an instance was refreshed.
_HEARTBEAT = """
WITH beat AS (
    UPDATE nodes_nodeinstance
       SET last_heartbeat_at = %(now)s, lifecycle_status = COALESCE(%(lifecycle)s, lifecycle_status)
     WHERE node_id = %(node)s AND shutdown_at IS NULL AND (%(instance)s::text IS NULL OR instance_id = %(instance)s)
    RETURNING 1
)
UPDATE nodes_node
   SET last_heartbeat_at = %(now)s, lifecycle_status = COALESCE(%(lifecycle)s, lifecycle_status)
 WHERE id = %(node)s AND shutdown_at IS NULL AND EXISTS (SELECT 1 FROM beat)
RETURNING id
"""


def reservation_of(node_id: str) -> int | None:
    """The active agent key created for `node_id` (`create_api_key --nodes`), if any."""
    return (
        ApiKey.objects.filter(role=ApiKey.Role.AGENT, revoked_at__isnull=True, node_ids__contains=[node_id])
        .values_list("pk", flat=True)
        .first()
    )


def check_serves(principal: Principal, node_id: str) -> None:
    """403 unless `principal` may heart-beat for or shut down `node_id` (404 stays the answer for no node)."""
    if not principal.is_admin and not policy.may_serve(principal, ownership.owner_of(node_id)):
        if Node.objects.filter(pk=node_id).exists():
            raise NotPermitted(f"node '{node_id}' belongs to another agent key")


def _heartbeat_params(node_id: str, instance_id: str | None, lifecycle: str | None, now: datetime) -> dict:
    lifecycle = lifecycle if lifecycle in HEARTBEAT_LIFECYCLES else None
    return {"now": now, "node": node_id, "instance": instance_id, "lifecycle": lifecycle}


def record_heartbeat(
    node_id: str, instance_id: str | None, lifecycle: str | None, now: datetime, principal: Principal = policy.OPEN
) -> None:
    """Refresh the liveness of one instance (or, without an instance id, of every live one).

    NodeNotFound (404) for an unknown node or instance: that is what makes an SDK agent register
    again. A beat of an instance that shut down is accepted but revives nothing.
    """
    check_serves(principal, node_id)
    params = _heartbeat_params(node_id, instance_id, lifecycle, now)
    with connection.cursor() as cursor:
        cursor.execute(_HEARTBEAT, params)
        if cursor.fetchone():
            return
    instances = NodeInstance.objects.filter(node_id=node_id)
    if instance_id is not None:
        instances = instances.filter(instance_id=instance_id)
    if not instances.exists():
        if instance_id is None or not Node.objects.filter(pk=node_id).exists():
            raise NodeNotFound(f"node '{node_id}' not found")
        raise NodeNotFound(f"instance '{instance_id}' of node '{node_id}' not found; register it again")


# A report from an instance refreshes its liveness at most this often (per server process).
SIGN_OF_LIFE_EVERY_SECONDS = 1.0
_MAX_REMEMBERED_SIGNS = 10_000
_last_sign: dict[tuple[str, str], float] = {}


def record_sign_of_life(node_id: str, instance_id: str, now: datetime) -> None:
    """Count a status callback from an instance as its heartbeat, at most once a second per instance.

    The SDK beats from a thread, but only while its event loop's health check (one request every
    30 s, 5 s timeout, in the HTTP pool its reasoners share) succeeds. A reasoner fanning out to a
    thousand children queues thousands of requests in that pool; on a slow host the check times
    out, the SDK declares itself degraded and stops beating while its children keep reporting.
    Judged by heartbeats alone, the instance was lost within seconds and its executions re-queued,
    the fan-out's parent among them (bench scenario 6). The callback is the same evidence as a beat.
    """
    if not instance_id:
        return  # a callback of work no instance holds (re-queued, or dispatched before instances)
    key, moment = (node_id, instance_id), time.monotonic()
    if moment - _last_sign.get(key, float("-inf")) < SIGN_OF_LIFE_EVERY_SECONDS:
        return
    if len(_last_sign) >= _MAX_REMEMBERED_SIGNS:
        _last_sign.clear()
    _last_sign[key] = moment
    with connection.cursor() as cursor:  # an instance that shut down, or is unknown, is not revived
        cursor.execute(_HEARTBEAT, _heartbeat_params(node_id, instance_id, None, now))


def forget_signs_of_life() -> None:
    """Drop the times of the last recorded signs of life (tests)."""
    _last_sign.clear()


async def record_heartbeat_on_loop(
    node_id: str, instance_id: str | None, lifecycle: str | None, now: datetime, principal: Principal = policy.OPEN
) -> bool:
    """`record_heartbeat` on the event loop (its one UPDATE on a loop connection): True once recorded.

    False when only the thread path can answer: an unknown node or instance (its 404), or the
    database (away, or no loop connection free). A 403 is raised as there; so is Django's
    SynchronousOnlyOperation when the node's owner is not cached, which sends the request to the
    thread path too.
    """
    check_serves(principal, node_id)
    rows = await loop_db.database.fetchall(_HEARTBEAT, _heartbeat_params(node_id, instance_id, lifecycle, now))
    return bool(rows)


def shutdown(node_id: str, instance_id: str | None, now: datetime, principal: Principal = policy.OPEN) -> Node:
    """Mark the instance offline after its graceful-shutdown notice; the node when none is left alive.

    The SDK's notice names no instance: with one live instance it is that one; with several it
    cannot be told, and the instance that stops is found by its heartbeats stopping instead.
    """
    window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
    check_serves(principal, node_id)
    with transaction.atomic():
        node = Node.objects.select_for_update().filter(pk=node_id).first()
        if node is None:
            raise NodeNotFound(f"node '{node_id}' not found")
        alive = NodeInstance.objects.filter(node_id=node_id).alive(now, window)
        leaving = alive.filter(instance_id=instance_id) if instance_id is not None else alive
        if len(leaving) == 1 or instance_id is not None:
            leaving.update(shutdown_at=now, lifecycle_status=Node.Lifecycle.OFFLINE)
        else:
            logger.info("shutdown notice of node %s names no instance (%d alive)", node_id, len(leaving))
        if not alive.exists():
            node.shutdown_at, node.lifecycle_status = now, Node.Lifecycle.OFFLINE
            node.save(update_fields=["shutdown_at", "lifecycle_status"])
    return node
