"""Who may do what: the trust model in one place (pure; the views ask it, the matrix test checks it).

Every API key has a role:
- **admin**: everything (as does a staff session, and everyone while no key exists at all);
- **client**: fires executions, and reads, cancels, restarts and redelivers the ones it created
  and their descendants (an `app.call` child belongs to its parent's owner); reads its runs' memory;
- **agent**: serves the nodes it owns (a node id belongs to the first agent key that registers it,
  unless an admin bound it to a key, or the key was created for it with `--nodes`): registers and
  heart-beats them, receives and reports on executions dispatched to them, reads and writes the
  memory of those runs, and may `app.call` any node (it then reads, and may cancel, what it fired).

Functions take facts (key ids, owners) as plain values, never the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN = "admin"
CLIENT = "client"
AGENT = "agent"
ROLES = (ADMIN, CLIENT, AGENT)


@dataclass(frozen=True)
class Principal:
    """Who is asking: an API key (its id, role and reserved node ids), a staff user, or anyone."""

    key_id: int | None
    role: str
    node_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_agent(self) -> bool:
        return self.role == AGENT


# No key exists yet: the API is open (and `manage.py serve` refuses a public address meanwhile).
OPEN = Principal(None, ADMIN)
STAFF = Principal(None, ADMIN)


@dataclass(frozen=True)
class ExecutionFacts:
    """What decides access to an execution: who owns its run, who fired it, who serves its node."""

    owner_key_id: int | None
    submitted_by_id: int | None
    node_owner_key_id: int | None


def _mine(principal: Principal, key_id: int | None) -> bool:
    return principal.key_id is not None and key_id == principal.key_id


def may_register(principal: Principal, owner_key_id: int | None, reserved_by: int | None) -> bool:
    """Register (or re-register) a node that belongs to `owner_key_id`, or is reserved for `reserved_by`."""
    if principal.is_admin:
        return True
    if not principal.is_agent:
        return False
    if owner_key_id is not None:
        return _mine(principal, owner_key_id)
    return reserved_by is None or _mine(principal, reserved_by)


def may_serve(principal: Principal, owner_key_id: int | None) -> bool:
    """Heart-beat or shut down a node (its owner, or an admin)."""
    return principal.is_admin or (principal.is_agent and _mine(principal, owner_key_id))


def may_read(principal: Principal, facts: ExecutionFacts) -> bool:
    """See an execution: its status, result, trace."""
    return (
        principal.is_admin
        or _mine(principal, facts.owner_key_id)
        or _mine(principal, facts.submitted_by_id)
        or may_report(principal, facts)
    )


def may_report(principal: Principal, facts: ExecutionFacts) -> bool:
    """Report on an execution (status callback, logs, step events, notes): the agent serving its node."""
    return principal.is_admin or (principal.is_agent and _mine(principal, facts.node_owner_key_id))


def may_steer(principal: Principal, facts: ExecutionFacts) -> bool:
    """Cancel, restart or redeliver an execution: whoever owns its run or fired it, or an admin."""
    return principal.is_admin or _mine(principal, facts.owner_key_id) or _mine(principal, facts.submitted_by_id)


def may_use_run_memory(principal: Principal, sees_an_execution_of_the_run: bool, write: bool) -> bool:
    """Read (or write) the workflow memory of a run: agents and clients that may read one of its executions.

    An agent writes the checkpoints of the runs it serves; a client only reads its own runs' memory.
    """
    if principal.is_admin:
        return True
    return sees_an_execution_of_the_run and (principal.is_agent or not write)


def may_join_run(principal: Principal, sees_an_execution_of_the_run: bool, run_exists: bool) -> bool:
    """Fire an execution into an existing run (`X-Run-ID`): only into a run it may read."""
    return principal.is_admin or not run_exists or sees_an_execution_of_the_run


def may_use_shared_memory(principal: Principal) -> bool:
    """Session, actor and global memory: shared between agents, so agents and admins only."""
    return principal.is_admin or principal.is_agent


def may_watch_all(principal: Principal) -> bool:
    """The stream of every execution's events, and the dashboard."""
    return principal.is_admin
