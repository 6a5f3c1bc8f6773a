"""ASGI entry point served by daphne: Django for HTTP (the SSE stream is an async view)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")

django_application = get_asgi_application()


async def application(scope, receive, send):
    """Django for HTTP; WebSockets (the SDK's optional memory-events socket) are refused cleanly."""
    if scope["type"] == "websocket":
        # Closing before accepting makes daphne answer the handshake with 403 (not a 500 and a
        # traceback); the SDK tolerates it and gives up after a few tries.
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    await django_application(scope, receive, send)
