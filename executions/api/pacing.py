"""Paced status polls: hold the SDK's polls of an unfinished execution until it changes.

`app.call` polls its child's status about every 100 ms. A parent that fans out to hundreds of
children turns that into thousands of requests a second, which starve the agents' own
heartbeats. Holding such a poll on this process's event hub (no database work while it waits)
until the execution has a new event, or for at most AGENTFIELD_SDK_POLL_HOLD_SECONDS, answers
each poll as soon as there is news and cuts the poll traffic about tenfold, with no SDK change.
Other clients are never held.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from agentfield_project.handler import release_request_thread
from executions import listener, waiting
from executions.models import ACTIVE, Execution
from nodes.auth import aauthenticate_request

SDK_POLLER = "AgentField-SDK"


def paced(view: Callable) -> Callable:
    """Wrap the (sync, DRF) status view so the SDK's polls of unfinished work are held first."""

    async def wrapper(request: HttpRequest, execution_id: str) -> HttpResponse:
        hold = settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS
        sdk_poll = request.method == "GET" and request.headers.get("User-Agent", "").startswith(SDK_POLLER)
        # Only a caller the API would serve may be held; the others get their 401 at once.
        if hold > 0 and sdk_poll and await aauthenticate_request(request):
            await _hold(execution_id, hold)
        return await sync_to_async(view)(request, execution_id=execution_id)

    # drf-spectacular documents the wrapped APIView.
    wrapper.cls = view.cls  # type: ignore[attr-defined]
    wrapper.initkwargs = view.initkwargs  # type: ignore[attr-defined]
    return csrf_exempt(wrapper)


async def _hold(execution_id: str, seconds: float) -> None:
    hub = listener.running_hub()
    if not hub.ready.is_set():
        return  # the listener is still connecting: answer now rather than risk missing news
    await release_request_thread()
    await waiting.wait_for_news(execution_id, seconds, _unfinished)


def _unfinished(execution_id: str) -> bool:
    return Execution.objects.filter(pk=execution_id, status__in=ACTIVE).exists()
