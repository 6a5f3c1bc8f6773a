"""ASGI entry point served by daphne: Channels' protocol router in front of Django.

HTTP (the JSON API, admin, dashboard and the SSE event stream, an async view) goes to Django:
synchronous views in one thread hop each (agentfield_project/runtime/sync_path.py), async ones through
Django's ASGI handler.
Static files (dashboard and admin assets: the machines are offline, no CDN) are served from the
apps' and project's static directories. The stream's path gets Twisted back-pressure through
FlowControl (see agentfield_project/runtime/flow.py). One WebSocket is served: the SDK's memory change
events (executions/memory_events.py); any other is refused.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")

from agentfield_project.runtime.handler import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (Django must be set up first)
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from agentfield_project.postgres import availability  # noqa: E402
from agentfield_project.runtime.flow import FlowControl  # noqa: E402
from agentfield_project.runtime.sync_path import SyncPath  # noqa: E402
from executions.api import pacing  # noqa: E402
from executions.memory_events import MemoryEventsConsumer  # noqa: E402


async def refuse_websocket(scope, receive, send):
    """Any other WebSocket is refused cleanly."""
    # Closing before accepting makes daphne answer the handshake with 403 (not a 500 and a
    # traceback); the SDK tolerates it and gives up after a few tries.
    await receive()
    await send({"type": "websocket.close", "code": 1000})


router = ProtocolTypeRouter(
    {
        "http": SyncPath(
            FlowControl(ASGIStaticFilesHandler(django_application), prefixes=("/api/ui/v1/executions/events",)),
            before=pacing.hold,
            express=lambda path: path.startswith("/api/v1/nodes/") and path.endswith("/heartbeat"),
        ),
        "websocket": URLRouter(
            [
                path("api/v1/memory/events/ws", MemoryEventsConsumer.as_asgi()),
                re_path(r"", refuse_websocket),
            ]
        ),
    }
)
_serving = False


async def application(scope, receive, send):
    """The router; the first connection also runs the recovery hooks (callbacks spooled before a restart)."""
    global _serving
    if not _serving:
        _serving = True
        availability.web.start()  # a background thread: pings, then replays what is spooled
    await router(scope, receive, send)
