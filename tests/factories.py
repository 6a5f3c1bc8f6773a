"""Plain factory functions: rows with sensible defaults, every field overridable."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from django.utils import timezone

from executions.models import Execution
from nodes.models import Node

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
    return Node.objects.create(**values)


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
    return Execution.objects.create(**values)
