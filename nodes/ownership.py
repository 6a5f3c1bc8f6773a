"""Which agent key owns a node, cached per process: heartbeats and callbacks ask on every request.

An owner changes only at a node's first registration with an agent key or by an admin, so a
short cache is safe; this process forgets an entry at once when it changes it, the others
within AGENTFIELD_API_KEY_CACHE_SECONDS (the same window as a key's revocation).
"""

from __future__ import annotations

from agentfield_project.short_cache import ShortCache
from nodes.models import Node

_owners: ShortCache[str, int | None] = ShortCache()


def owner_of(node_id: str) -> int | None:
    """The id of the agent key that owns `node_id` (None: no owner, or no such node)."""
    return _owners.get(node_id, _load_owner)


def _load_owner(node_id: str) -> int | None:
    return Node.objects.filter(pk=node_id).values_list("owner_key_id", flat=True).first()


def forget(node_id: str | None = None) -> None:
    """Drop the cached owner of `node_id` (of every node without one)."""
    _owners.forget(node_id)
