"""An execution's family for the console: its ancestors (root first) and its descendants as a tree.

`parent_execution_id` links an `app.call` child to its caller; each direction is one recursive
query, bounded in depth (a deeper chain is a loop, not a workflow) and in rows (a page is for
reading, not for a fan-out of ten thousand children).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from executions.models import Execution

MAX_DEPTH = 100
MAX_DESCENDANTS = 200

ANCESTORS = """
WITH RECURSIVE up(id, parent, depth) AS (
    SELECT id, parent_execution_id, 0 FROM executions_execution WHERE id = %(id)s
    UNION ALL
    SELECT e.id, e.parent_execution_id, up.depth + 1
      FROM executions_execution e JOIN up ON e.id = up.parent
     WHERE up.depth < %(max_depth)s
)
SELECT id FROM up WHERE depth > 0 ORDER BY depth DESC
"""

# The path of created_at-ordered ids makes siblings come oldest first and children follow their parent.
DESCENDANTS = """
WITH RECURSIVE down(id, depth, path) AS (
    SELECT id, 1, ARRAY[created_at::text, id]
      FROM executions_execution WHERE parent_execution_id = %(id)s
    UNION ALL
    SELECT e.id, down.depth + 1, down.path || ARRAY[e.created_at::text, e.id]
      FROM executions_execution e JOIN down ON e.parent_execution_id = down.id
     WHERE down.depth < %(max_depth)s
)
SELECT id, depth FROM down ORDER BY path LIMIT %(limit)s
"""

FIELDS = ("id", "node_id", "target_name", "status", "attempt", "created_at", "duration_ms", "started_at")


@dataclass(frozen=True)
class Branch:
    """One descendant and how deep it sits below the execution (1: a direct child)."""

    execution: Execution
    depth: int


def ancestors(execution: Execution) -> list[Execution]:
    """The callers of `execution`, the root first, its parent last."""
    if not execution.parent_execution_id:
        return []
    with connection.cursor() as cursor:
        cursor.execute(ANCESTORS, {"id": execution.id, "max_depth": MAX_DEPTH})
        ids = [row[0] for row in cursor.fetchall()]
    found = Execution.objects.only(*FIELDS).in_bulk(ids)
    return [found[i] for i in ids if i in found]


def descendants(execution: Execution) -> list[Branch]:
    """Children, grandchildren, ... in tree order (each after its parent), at most MAX_DESCENDANTS."""
    with connection.cursor() as cursor:
        cursor.execute(DESCENDANTS, {"id": execution.id, "max_depth": MAX_DEPTH, "limit": MAX_DESCENDANTS})
        rows = cursor.fetchall()
    found = Execution.objects.only(*FIELDS).in_bulk([row[0] for row in rows])
    return [Branch(found[i], depth) for i, depth in rows if i in found]
