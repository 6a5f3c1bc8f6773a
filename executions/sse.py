"""GET /api/ui/v1/executions/events: lifecycle events as Server-Sent Events.

An async Django view streaming an async generator (served by daphne through Channels'
ProtocolTypeRouter). A client disconnect cancels the generator, whose `finally` unsubscribes at
once. Resuming follows one order so that nothing is lost or repeated at the replay/live
boundary: subscribe to the hub first (buffering), replay `id > Last-Event-ID` from the table,
then drain the buffer skipping ids already replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils import timezone

from agentfield_project.runtime.flow import ALWAYS_WRITABLE, SCOPE_KEY, Writability
from agentfield_project.runtime.handler import release_request_thread
from agentfield_project.timestamps import rfc3339
from executions import events, listener
from executions.hub import Hub, Matcher, Subscription
from executions.models import ExecutionEvent
from nodes import policy, throttling
from nodes.auth import aauthenticate_request, unauthorized_response

logger = logging.getLogger(__name__)

MAX_EVENT_ID = 2**63 - 1
FILTERS = {"execution_id": "execution_id", "run_id": "run_id", "workflow_id": "run_id", "target": "target"}
READY_TIMEOUT_SECONDS = 10.0
REPLAY_PAGE = 500
RETRY_MS = 3000  # how long a browser waits before it reconnects (and resumes by id)
_DIGITS = re.compile(r"[0-9]{1,19}")


class BadRequest(Exception):
    """The request asks for something the stream cannot serve."""


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    """The resume point: a decimal id in 0..2^63-1 from the header, else the query; None if absent."""
    raw = header if header is not None else query
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_EVENT_ID:
        raise BadRequest("Last-Event-ID must be a decimal event id between 0 and 9223372036854775807")
    return int(raw)


def parse_filters(params: Any) -> dict[str, str]:
    """Equality filters on the event fields (`workflow_id` is an alias of `run_id`)."""
    found: dict[str, str] = {}
    for name, field in FILTERS.items():
        values = params.getlist(name)
        if not values:
            continue
        if len(values) > 1 or not values[0] or len(values[0]) > 512 or "\x00" in values[0]:
            raise BadRequest(f"{name} must be given once, as a non-empty id of at most 512 characters")
        found[field] = values[0]
    return found


def matcher(filters: dict[str, str]) -> Matcher:
    return lambda event: all(getattr(event, field) == value for field, value in filters.items())


def frame(payload: dict[str, Any], event_id: int | None = None, retry_ms: int | None = None) -> bytes:
    """One SSE frame; `json.dumps` escapes newlines, so data is one line and cannot inject frames."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    tail = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"{head}data: {json.dumps(payload, separators=(',', ':'), default=str)}\n{tail}\n".encode()


def event_frame(event: ExecutionEvent) -> bytes:
    """The event's frame, encoded once however many streams send it."""
    encoded = getattr(event, "_sse_frame", None)
    if encoded is None:
        encoded = event._sse_frame = frame(events.as_frame(event), event.id)
    return encoded


def _now() -> str:
    return rfc3339(timezone.now())


@sync_to_async
def _replay_page(after: int, filters: dict[str, str]) -> list[ExecutionEvent]:
    return list(ExecutionEvent.objects.filter(id__gt=after, **filters).order_by("id")[:REPLAY_PAGE])


async def _writable(subscription: Subscription, flow: Writability) -> bool:
    """Wait until the client's socket takes more data; False if the stream overflowed meanwhile."""
    while flow.paused and not subscription.overflowed:
        subscription.wakeup.clear()
        await subscription.wakeup.wait()
    return not subscription.overflowed


async def _replay(
    subscription: Subscription, after: int, filters: dict[str, str], flow: Writability
) -> AsyncIterator[tuple[int, bytes]]:
    """Frames of the stored events after `after`, page by page; yields (id, frame)."""
    while await _writable(subscription, flow):
        page = await _replay_page(after, filters)
        for event in page:
            yield event.id, event_frame(event)
        if len(page) < REPLAY_PAGE:
            return
        after = page[-1].id


async def _live(subscription: Subscription, last: int, flow: Writability, heartbeat: float) -> AsyncIterator[bytes]:
    """Buffered events newer than `last`, and a heartbeat every `heartbeat` seconds, until overflow."""
    next_beat = time.monotonic() + heartbeat
    while await _writable(subscription, flow):
        if subscription.pending:
            event = subscription.pending.popleft()
            if event.id > last:
                last = event.id
                yield event_frame(event)
            continue
        delay = next_beat - time.monotonic()
        if delay <= 0:
            next_beat = time.monotonic() + heartbeat
            yield frame({"type": "heartbeat", "timestamp": _now()})
            continue
        subscription.wakeup.clear()
        try:
            async with asyncio.timeout(delay):
                await subscription.wakeup.wait()
        except TimeoutError:
            pass


async def _stream(hub: Hub, after: int | None, filters: dict[str, str], flow: Writability) -> AsyncIterator[bytes]:
    """The whole response body: subscribe, connected, replay, live; always unsubscribes when it ends."""
    # Subscribing here, not in the view: a body that is never iterated then holds nothing.
    subscription = hub.subscribe(matcher(filters), settings.AGENTFIELD_SSE_CLIENT_QUEUE)
    flow.listeners.append(subscription.wake)
    try:
        connected = {"type": "connected", "message": "Execution events stream connected", "timestamp": _now()}
        connected |= {"last_event_id": after, "heartbeat_seconds": settings.AGENTFIELD_SSE_HEARTBEAT_SECONDS}
        yield frame(connected, retry_ms=RETRY_MS)
        last = after if after is not None else -1
        if after is not None:
            async for event_id, data in _replay(subscription, after, filters, flow):
                last = event_id
                yield data
        # The stream may stay open for hours: it must hold neither a connection nor a thread.
        await release_request_thread()
        async for data in _live(subscription, last, flow, settings.AGENTFIELD_SSE_HEARTBEAT_SECONDS):
            yield data
        if subscription.overflowed:
            logger.warning(
                "event stream fell %d events behind; ending it (the client resumes by id)", subscription.capacity
            )
    finally:
        hub.unsubscribe(subscription)
        flow.listeners.remove(subscription.wake)


class CountedStream(StreamingHttpResponse):
    """A stream that gives back its key's place (nodes/throttling.py) when the server closes it."""

    def __init__(self, principal: policy.Principal, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._principal: policy.Principal | None = principal

    def close(self) -> None:
        # Called once the response ends, however it ends (even if its body was never iterated).
        principal, self._principal = self._principal, None
        if principal is not None:
            throttling.STREAMS.close(principal)
        super().close()


async def stream_denial(request: HttpRequest) -> JsonResponse | None:
    """None when the request may watch every execution (nodes/policy.py), else the JSON 401/403 to send."""
    principal = getattr(request, "principal", None)  # set by nodes.middleware.ApiKeyMiddleware
    if principal is None:
        principal = request.principal = await aauthenticate_request(request)
    if principal is None:
        return unauthorized_response()
    if not policy.may_watch_all(principal):
        return JsonResponse(
            {"error": "this stream is for admin keys and staff", "code": "permission_denied"}, status=403
        )
    return None


async def events_view(request: HttpRequest) -> HttpResponse:
    """The SSE stream of all executions' lifecycle events (admins and staff), optionally filtered."""
    if request.method != "GET":
        return JsonResponse({"error": "method not allowed", "code": "method_not_allowed"}, status=405)
    if denial := await stream_denial(request):
        return denial
    try:
        after = parse_last_event_id(request.headers.get("Last-Event-ID"), request.GET.get("last_event_id"))
        filters = parse_filters(request.GET)
    except BadRequest as error:
        return JsonResponse({"error": str(error), "code": "bad_request"}, status=400)
    hub = listener.running_hub()
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await hub.ready.wait()
    except TimeoutError:
        return JsonResponse({"error": "event stream unavailable, retry shortly", "code": "unavailable"}, status=503)
    flow = request.scope.get(SCOPE_KEY, ALWAYS_WRITABLE) if hasattr(request, "scope") else ALWAYS_WRITABLE
    if not throttling.STREAMS.try_open(request.principal):
        limit = settings.AGENTFIELD_MAX_STREAMS_PER_KEY
        message = f"this API key has {limit} event streams open here (AGENTFIELD_MAX_STREAMS_PER_KEY); close one"
        return throttling.too_many(message, throttling.STREAM_RETRY_SECONDS)
    response = CountedStream(
        request.principal, _stream(hub, after, filters, flow), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def stats_view(request: HttpRequest) -> HttpResponse:
    """This process's stream state: open subscriptions, listener connection, last published id."""
    if denial := await stream_denial(request):
        return denial
    hub = listener.current_hub()
    if hub is None:
        return JsonResponse({"subscribers": 0, "listener_connected": False, "last_event_id": None})
    body = {"subscribers": hub.subscriber_count, "listener_connected": hub.listener_connected}
    return JsonResponse(body | {"last_event_id": hub.last_id})
