"""Which agent key owns a node, cached per process: heartbeats and callbacks ask on every request.

An owner changes only at a node's first registration with an agent key or by an admin, so a
short cache is safe; this process forgets an entry at once when it changes it, the others
within AGENTFIELD_API_KEY_CACHE_SECONDS (the same window as a key's revocation).
"""

from __future__ import annotations

import time

from django.conf import settings

from nodes.models import Node

_owners: dict[str, tuple[int | None, float]] = {}


def owner_of(node_id: str) -> int | None:
    """The id of the agent key that owns `node_id` (None: no owner, or no such node)."""
    cached = _owners.get(node_id)
    if cached is not None and time.monotonic() - cached[1] < settings.AGENTFIELD_API_KEY_CACHE_SECONDS:
        return cached[0]
    owner = Node.objects.filter(pk=node_id).values_list("owner_key_id", flat=True).first()
    if len(_owners) > 10_000:
        _owners.clear()
    _owners[node_id] = (owner, time.monotonic())
    return owner


def forget(node_id: str | None = None) -> None:
    """Drop the cached owner of `node_id` (of every node without one)."""
    if node_id is None:
        _owners.clear()
    else:
        _owners.pop(node_id, None)
