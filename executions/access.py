"""Which executions a principal may see and touch: nodes/policy.py applied to rows and querysets.

An execution the principal may not even see is a 404 (its existence is not told); one it may see
but not change is a 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db.models import Q, QuerySet

from agentfield_project.postgres import compiled
from agentfield_project.short_cache import ShortCache
from executions.exceptions import ExecutionNotFound
from executions.models import Execution
from nodes import ownership, policy
from nodes.exceptions import NotPermitted
from nodes.models import Node
from nodes.policy import ExecutionFacts, Principal


def facts(execution: Execution) -> ExecutionFacts:
    return ExecutionFacts(execution.owner_key_id, execution.submitted_by_id, ownership.owner_of(execution.node_id))


def visible(principal: Principal, executions: QuerySet[Execution]) -> QuerySet[Execution]:
    """The executions of `executions` that `principal` may read (one WHERE clause, no extra query)."""
    if principal.is_admin:
        return executions
    mine = Q(owner_key_id=principal.key_id) | Q(submitted_by_id=principal.key_id)
    if principal.is_agent:
        mine |= Q(node_id__in=Node.objects.filter(owner_key_id=principal.key_id).values("id"))
    return executions.filter(mine)


def check(principal: Principal, execution: Execution, allowed: Callable[[Principal, ExecutionFacts], bool]) -> None:
    """Raise 404 if `principal` may not see `execution`, 403 if it may see it but `allowed` says no."""
    if principal.is_admin:
        return  # no need to look up who serves the node
    known = facts(execution)
    if not policy.may_read(principal, known):
        raise ExecutionNotFound(f"execution '{execution.id}' not found")
    if not allowed(principal, known):
        raise NotPermitted()


# The agents' trace posts (about eight per app.call child) each name an execution whose owners
# never change once it exists, and a fan-out's thousand submits name the same parent: remember
# them briefly instead of reading the row every time.
_reported: ShortCache[str, Execution] = ShortCache()


def reportable(execution_id: str) -> Execution:
    """The execution (its id, node, owners and priority only) an agent reports on or calls children from;
    ExecutionNotFound if none. None of these fields changes once the execution exists."""
    return _reported.get(execution_id, _load_reportable)


def remember_reportable(execution_ids: Iterable[str]) -> None:
    """Read the executions of a batch of trace posts that `reportable` does not remember, in one query."""
    _reported.prime(execution_ids, _load_reportable_many)


_REPORTABLE_FIELDS = ("id", "node_id", "owner_key_id", "submitted_by_id", "priority")


def _load_reportable(execution_id: str) -> Execution:
    found = _load_reportable_many([execution_id])
    if execution_id not in found:
        raise ExecutionNotFound(f"execution '{execution_id}' not found")
    return found[execution_id]


def _load_reportable_many(execution_ids: list[str]) -> dict[str, Execution]:
    # Compiled once: compiling the ORM's query was most of a log post's look-up (bench scenario 11).
    return compiled.get_many(Execution, execution_ids, _REPORTABLE_FIELDS)


def forget_reported() -> None:
    """Drop what `reportable` remembers (tests; a test database that was rolled back)."""
    _reported.forget()


def owners_for_submission(principal: Principal, parent: Execution | None) -> tuple[int | None, int | None]:
    """(submitted_by, owner_key) of a new execution: a child of a parent the caller serves joins its run's owner."""
    if parent is not None and policy.may_report(principal, facts(parent)):
        return principal.key_id, parent.owner_key_id
    return principal.key_id, principal.key_id


def sees_run(principal: Principal, run_id: str) -> bool:
    """Whether `principal` may read at least one execution of the run."""
    return principal.is_admin or visible(principal, Execution.objects.filter(run_id=run_id)).exists()


def may_use_memory(principal: Principal, scope: str, scope_id: str, write: bool) -> bool:
    """Whether `principal` may read (or write) memory in `scope`/`scope_id` (workflow: the run id)."""
    if scope == "workflow":
        return policy.may_use_run_memory(principal, sees_run(principal, scope_id), write)
    return policy.may_use_shared_memory(principal)


def check_run_joinable(principal: Principal, run_id: str | None) -> None:
    """403 unless `principal` may fire into the run `run_id` (new runs are anyone's)."""
    if principal.is_admin or not run_id:
        return
    exists = Execution.objects.filter(run_id=run_id).exists()
    if not policy.may_join_run(principal, exists and sees_run(principal, run_id), exists):
        raise NotPermitted(f"run '{run_id}' belongs to another key")
