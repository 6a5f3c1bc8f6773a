"""JSON API of scoped memory: set, get, delete and list (the SDK's `app.memory`)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from agentfield_project.timestamps import rfc3339
from executions import access, memory, memory_events
from executions.exceptions import InvalidMemoryRequest
from executions.models import MemoryEntry
from nodes.auth import principal_of
from nodes.exceptions import NotPermitted


def entry_representation(entry: MemoryEntry) -> dict[str, Any]:
    """The wire form of one entry (data is the stored JSON value, not a string)."""
    body = {"key": entry.key, "data": entry.data}
    body.update(
        scope=entry.scope,
        scope_id=entry.scope_id,
        created_at=rfc3339(entry.created_at),
        updated_at=rfc3339(entry.updated_at),
    )
    return body


def not_found(message: str) -> Response:
    """A miss, in the shape the SDK turns into the caller's default."""
    return Response({"error": "not_found", "message": message, "code": 404}, status=status.HTTP_404_NOT_FOUND)


def body_of(request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidMemoryRequest("request body must be a JSON object")
    return request.data


def permitted(request, ref: memory.ScopeRef, write: bool) -> memory.ScopeRef:
    """`ref` if this key may use that memory (nodes/policy.py), else a 403."""
    if not access.may_use_memory(principal_of(request), ref.scope, ref.scope_id, write):
        raise NotPermitted(f"this key may not {'write' if write else 'read'} {ref.scope} memory '{ref.scope_id}'")
    return ref


class MemorySetView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py)

    def post(self, request):
        ref, key, data = self.asked(request)
        # The full entry, `data` included, as CONTRACT §5 and the Go server answer a set.
        return Response(entry_representation(memory.set_entry(ref, key, data, timezone.now())))

    async def post_on_loop(self, request) -> Response | None:
        """`post` on the event loop, without a request thread (runtime/direct.py); None: the thread path answers."""
        ref, key, data = self.asked(request)
        entry = await memory.set_entry_on_loop(ref, key, data, timezone.now())
        return None if entry is None else Response(entry_representation(entry))

    @staticmethod
    def asked(request) -> tuple[memory.ScopeRef, str, Any]:
        """(where, key, value) of a set this key may make (else its 400 or 403)."""
        body = body_of(request)
        key = memory.check_key(body.get("key"))
        ref = permitted(request, memory.write_ref(memory.check_scope(body.get("scope")), request.headers), True)
        if body.get("data") is None:
            raise InvalidMemoryRequest("'data' is required and must not be null")
        return ref, key, body["data"]


class MemoryGetView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py)

    def post(self, request):
        key, scope, refs, usable = self.asked(request)
        return self.answer(memory.get_entry(usable, key), key, scope, refs)

    async def post_on_loop(self, request) -> Response | None:
        """`post` on the event loop, without a request thread (runtime/direct.py); None: the thread path answers."""
        key, scope, refs, usable = self.asked(request)
        found = await memory.get_entries_on_loop(usable, key)
        return None if found is None else self.answer(found[0] if found else None, key, scope, refs)

    @staticmethod
    def asked(request) -> tuple[str, str | None, list[memory.ScopeRef], list[memory.ScopeRef]]:
        """(key, explicit scope, scopes searched, those of them this key may read) of a get (else its 400 or 403)."""
        body = body_of(request)
        key = memory.check_key(body.get("key"))
        scope = memory.check_scope(body.get("scope"))
        refs = memory.read_refs(scope, request.headers)
        principal = principal_of(request)
        # Without a scope the search skips the scopes this key may not read; with one it is a 403.
        usable = [ref for ref in refs if access.may_use_memory(principal, ref.scope, ref.scope_id, False)]
        if scope and not usable:
            permitted(request, refs[0], False)
        return key, scope, refs, usable

    @staticmethod
    def answer(entry: MemoryEntry | None, key: str, scope: str | None, refs: list[memory.ScopeRef]) -> Response:
        if entry is not None:
            return Response(entry_representation(entry))
        if scope:
            return not_found(f"memory with key '{key}' not found in scope '{scope}' for ID '{refs[0].scope_id}'")
        return not_found("Memory key not found in any scope")


class MemoryDeleteView(APIView):
    def post(self, request):
        body = body_of(request)
        key = memory.check_key(body.get("key"))
        ref = permitted(request, memory.write_ref(memory.check_scope(body.get("scope")), request.headers), True)
        memory.delete_entry(ref, key, timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemoryListView(APIView):
    def get(self, request):
        scope = memory.check_scope(request.query_params.get("scope"))
        if scope is None:
            raise InvalidMemoryRequest("Scope parameter is required for listing memory")
        entries = memory.list_entries(permitted(request, memory.explicit_ref(scope, request.headers), False))
        return Response([entry_representation(entry) for entry in entries])


class MemoryEventHistoryView(APIView):
    """GET /api/v1/memory/events/history: past memory changes (the SDK's `history()`), oldest first."""

    def get(self, request):
        return Response(memory_events.history(principal_of(request), request.query_params))
