"""Scoped memory: where a key lives (pure scope resolution) and the reads and writes on MemoryEntry.

A write answers only after its row is committed: it is the reasoner's checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Func, IntegerField, QuerySet, TextField
from django.db.models.functions import Cast, Left

from agentfield_project.postgres import loop_db
from executions.exceptions import InvalidMemoryRequest
from executions.models import MemoryEntry

WORKFLOW, SESSION, ACTOR, GLOBAL = "workflow", "session", "actor", "global"
SCOPES = (WORKFLOW, SESSION, ACTOR, GLOBAL)
GLOBAL_ID = "global"
# The header that names the scope id of each scope, in the order an unscoped lookup tries them.
SCOPE_HEADERS = {WORKFLOW: "X-Workflow-ID", SESSION: "X-Session-ID", ACTOR: "X-Actor-ID"}
MAX_KEY_LENGTH = 1024
MAX_SCOPE_ID_LENGTH = 255  # MemoryEntry.scope_id
PREVIEW_CHARS = 200


@dataclass(frozen=True)
class ScopeRef:
    """One scope instance: `workflow/run_...`, `session/s-1`, `global/global`."""

    scope: str
    scope_id: str


@dataclass(frozen=True)
class Checkpoint:
    """A memory entry of a run, summarised for the dashboard and admin (no full data)."""

    key: str
    size_bytes: int
    preview: str
    created_at: datetime
    updated_at: datetime


# --- pure scope resolution --------------------------------------------------------------------


def check_scope(scope: Any) -> str | None:
    """Return the scope name, or None when absent (missing, null or ""); reject anything else."""
    if scope is None or scope == "":
        return None
    if not isinstance(scope, str) or scope not in SCOPES:
        raise InvalidMemoryRequest(f"unknown scope {scope!r}: must be one of {', '.join(SCOPES)}")
    return scope


def scope_id_from(header: str, headers: Mapping[str, str]) -> str:
    """The scope id carried by `header` ("" when absent); rejects ids the table cannot hold."""
    scope_id = headers.get(header) or ""
    if len(scope_id) > MAX_SCOPE_ID_LENGTH:
        raise InvalidMemoryRequest(f"{header} is longer than {MAX_SCOPE_ID_LENGTH} characters")
    if "\x00" in scope_id:
        raise InvalidMemoryRequest(f"{header} contains a NUL character")
    return scope_id


def explicit_ref(scope: str, headers: Mapping[str, str]) -> ScopeRef:
    """The scope named explicitly; its id comes from its header (or is "global")."""
    if scope == GLOBAL:
        return ScopeRef(GLOBAL, GLOBAL_ID)
    header = SCOPE_HEADERS[scope]
    scope_id = scope_id_from(header, headers)
    if not scope_id:
        raise InvalidMemoryRequest(f"scope '{scope}' needs the {header} header")
    return ScopeRef(scope, scope_id)


def present_refs(headers: Mapping[str, str]) -> list[ScopeRef]:
    """Every scope whose header is present, workflow -> session -> actor, then global."""
    ids = {scope: scope_id_from(header, headers) for scope, header in SCOPE_HEADERS.items()}
    return [*(ScopeRef(scope, scope_id) for scope, scope_id in ids.items() if scope_id), ScopeRef(GLOBAL, GLOBAL_ID)]


def write_ref(scope: str | None, headers: Mapping[str, str]) -> ScopeRef:
    """Where a set/delete goes: the explicit scope, else the first present header, else global."""
    return explicit_ref(scope, headers) if scope else present_refs(headers)[0]


def read_refs(scope: str | None, headers: Mapping[str, str]) -> list[ScopeRef]:
    """Where a get looks, in order: the explicit scope only, else workflow -> session -> actor -> global."""
    return [explicit_ref(scope, headers)] if scope else present_refs(headers)


def check_key(key: Any) -> str:
    """Return the key if it is a non-empty string within the length limit."""
    if key is None:
        raise InvalidMemoryRequest("'key' is required")
    if not isinstance(key, str):
        raise InvalidMemoryRequest(f"'key' must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidMemoryRequest("'key' must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidMemoryRequest(f"'key' is longer than {MAX_KEY_LENGTH} characters")
    return key


# --- operations --------------------------------------------------------------------------------

# One statement: the entry, its change event (executions/memory_events.py) and the NOTIFY.
_UPSERT = """
WITH entry AS (
    INSERT INTO executions_memoryentry (scope, scope_id, key, data, created_at, updated_at)
    VALUES (%(scope)s, %(scope_id)s, %(key)s, %(data)s::jsonb, %(now)s, %(now)s)
    ON CONFLICT (scope, scope_id, key) DO UPDATE SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at
    RETURNING id, created_at
), event AS (
    INSERT INTO executions_memoryevent (scope, scope_id, key, action, created_at)
    VALUES (%(scope)s, %(scope_id)s, %(key)s, 'set', %(now)s)
)
SELECT entry.id, entry.created_at, pg_notify(%(channel)s, '') FROM entry
"""
_DELETE = """
WITH gone AS (
    DELETE FROM executions_memoryentry WHERE scope = %(scope)s AND scope_id = %(scope_id)s AND key = %(key)s
    RETURNING id
), event AS (
    INSERT INTO executions_memoryevent (scope, scope_id, key, action, created_at)
    SELECT %(scope)s, %(scope_id)s, %(key)s, 'delete', %(now)s FROM gone
)
SELECT count(*) FROM gone, LATERAL (SELECT pg_notify(%(channel)s, '')) AS notified
"""
MEMORY_CHANNEL = "agentfield_memory"


def set_entry(ref: ScopeRef, key: str, data: Any, now: datetime) -> MemoryEntry:
    """Upsert `key` in `ref` in one statement; the row is committed when this returns."""
    # Autocommit: the single statement is its own transaction, so the checkpoint is durable here.
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT, _set_params(ref, key, data, now))
        return _set_entry(ref, key, data, now, cursor.fetchone())


async def set_entry_on_loop(ref: ScopeRef, key: str, data: Any, now: datetime) -> MemoryEntry | None:
    """`set_entry` on an event-loop connection (loop_db.py); None: not run there (the thread path's turn).

    If the connection broke after the server ran it, the thread path sets the same value again,
    and watchers may see that change twice.
    """
    rows = await loop_db.database.fetchall(_UPSERT, _set_params(ref, key, data, now))
    return _set_entry(ref, key, data, now, rows[0]) if rows else None


def _set_params(ref: ScopeRef, key: str, data: Any, now: datetime) -> dict[str, Any]:
    if data is None:
        raise InvalidMemoryRequest("'data' is required and must not be null")
    encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
    return {
        "scope": ref.scope,
        "scope_id": ref.scope_id,
        "key": key,
        "data": encoded,
        "now": now,
        "channel": MEMORY_CHANNEL,
    }


def _set_entry(ref: ScopeRef, key: str, data: Any, now: datetime, row: tuple) -> MemoryEntry:
    pk, created_at, _ = row
    return MemoryEntry(
        id=pk, scope=ref.scope, scope_id=ref.scope_id, key=key, data=data, created_at=created_at, updated_at=now
    )


# The first of the scopes (in the order given) that holds the key: the SDK's checkpoint read.
_GET = """
SELECT e.id, e.scope, e.scope_id, e.data::text, e.created_at, e.updated_at
  FROM unnest(%(scopes)s::text[], %(scope_ids)s::text[]) WITH ORDINALITY AS wanted(scope, scope_id, n)
  JOIN executions_memoryentry e ON e.scope = wanted.scope AND e.scope_id = wanted.scope_id AND e.key = %(key)s
 ORDER BY wanted.n
 LIMIT 1
"""


def get_entry(refs: list[ScopeRef], key: str) -> MemoryEntry | None:
    """The entry of `key` in the first of `refs` that holds it (one query), or None."""
    if not refs:
        return None
    # Plain SQL: compiling the ORM's OR of scopes was a fifth of this hot read's CPU (bench scenario 11).
    with connection.cursor() as cursor:
        cursor.execute(_GET, _get_params(refs, key))
        row = cursor.fetchone()
    return None if row is None else _got_entry(key, row)


async def get_entries_on_loop(refs: list[ScopeRef], key: str) -> list[MemoryEntry] | None:
    """`get_entry` on an event-loop connection (loop_db.py): [the entry], [] for none, or None when
    it could not be read there now (the thread path's turn)."""
    if not refs:
        return []
    rows = await loop_db.database.fetchall(_GET, _get_params(refs, key))
    return None if rows is None else [_got_entry(key, row) for row in rows]


def _get_params(refs: list[ScopeRef], key: str) -> dict[str, Any]:
    return {"scopes": [ref.scope for ref in refs], "scope_ids": [ref.scope_id for ref in refs], "key": key}


def _got_entry(key: str, row: tuple) -> MemoryEntry:
    pk, scope, scope_id, data, created_at, updated_at = row
    return MemoryEntry(
        id=pk,
        scope=scope,
        scope_id=scope_id,
        key=key,
        data=json.loads(data),
        created_at=created_at,
        updated_at=updated_at,
    )


def delete_entry(ref: ScopeRef, key: str, now: datetime) -> bool:
    """Delete `key` from `ref`; returns whether it existed (deleting a missing key is not an error)."""
    params = {"scope": ref.scope, "scope_id": ref.scope_id, "key": key, "now": now, "channel": MEMORY_CHANNEL}
    with connection.cursor() as cursor:
        cursor.execute(_DELETE, params)
        return cursor.fetchone()[0] > 0  # no row, no event, no NOTIFY


def list_entries(ref: ScopeRef) -> QuerySet[MemoryEntry]:
    """All entries of one scope instance, by key."""
    return MemoryEntry.objects.filter(scope=ref.scope, scope_id=ref.scope_id).order_by("key")


def with_size(entries: QuerySet[MemoryEntry]) -> QuerySet[MemoryEntry]:
    """Annotate `size_bytes` (stored, possibly compressed, size of `data`) and a short text preview."""
    return entries.annotate(
        size_bytes=Func("data", function="pg_column_size", output_field=IntegerField()),
        preview=Left(Cast("data", TextField()), PREVIEW_CHARS),
    )


def checkpoints_for_run(run_id: str) -> list[Checkpoint]:
    """The run's workflow-scoped memory (its checkpoints), by key, without loading the data."""
    entries = with_size(list_entries(ScopeRef(WORKFLOW, run_id))).defer("data")
    return [
        Checkpoint(
            key=entry.key,
            size_bytes=entry.size_bytes or 0,
            preview=entry.preview or "",
            created_at=entry.created_at,
            updated_at=entry.updated_at,
        )
        for entry in entries
    ]
