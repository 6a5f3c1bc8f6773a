"""Paced status polls: hold the SDK's polls of an unfinished execution until it changes.

`app.call` polls its child's status about every 100 ms. A parent that fans out to hundreds of
children turns that into thousands of requests a second, which starve the agents' own
heartbeats. Holding such a poll on this process's event hub (no database work while it waits)
until the execution has a new event, or for at most AGENTFIELD_SDK_POLL_HOLD_SECONDS, answers
each poll as soon as there is news and cuts the poll traffic about tenfold, with no SDK change.
Other clients are never held.

The hold runs before the request reaches Django: agentfield_project/runtime/sync_path.py awaits `hold`
for each synchronous request, on the event loop, so a held poll keeps no thread; the poll itself
is then answered by the ordinary (synchronous) status view, in one thread hop.
"""

from __future__ import annotations

import re

from django.conf import settings

from agentfield_project.postgres import availability
from agentfield_project.runtime import intake
from executions import listener, waiting
from executions.models import ACTIVE, Execution
from nodes import auth

SDK_POLLER = b"agentfield-sdk"
_POLL = re.compile(r"/api/v1/executions/(?P<id>[^/]+)")
_OTHER_ROUTES = frozenset({"batch-status", "note"})  # /api/v1/executions/<these> are not status polls


async def hold(scope: dict) -> None:
    """Return once an SDK's poll of an unfinished execution has news (or the hold is over); at once for others."""
    seconds = settings.AGENTFIELD_SDK_POLL_HOLD_SECONDS
    match = _POLL.fullmatch(scope["path"]) if scope["method"] == "GET" and seconds > 0 else None
    if match is None or match["id"] in _OTHER_ROUTES:
        return
    headers = dict(scope["headers"])
    if not headers.get(b"user-agent", b"").lower().startswith(SDK_POLLER):
        return
    hub = listener.running_hub()
    if not hub.ready.is_set():
        return  # the listener is still connecting: answer now rather than risk missing news
    if hub.finished(match["id"]):
        return  # it has ended: nothing to wait for, and no database read to find that out
    key = intake.presented_key(headers)
    if hub.unfinished(match["id"]) and auth.credentials_without_database(key, False):
        # The hub saw it queued or running, and the key is good: hold without a read (one thread
        # hop and one query less for each poll of a fan-out's thousand children).
        still_waiting = None
    else:
        still_waiting = lambda execution_id: _worth_holding(key, execution_id)  # noqa: E731
    try:
        await waiting.wait_for_news(match["id"], seconds, still_waiting)
    except Exception as error:
        # The hold runs before Django: an error here would reach daphne as a bare 500. A database
        # that is away only means "do not hold"; the status view then answers its JSON 503.
        if not availability.is_unavailable(error):
            raise


def _worth_holding(key: str | None, execution_id: str) -> bool:
    """Whether the API would serve this caller (the others get their 401 at once) and the execution is unfinished."""
    if auth.keys_required() and auth.match_key(key) is None:
        return False
    return Execution.objects.filter(pk=execution_id, status__in=ACTIVE).exists()
