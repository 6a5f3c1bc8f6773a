"""The ASGI entry point refuses WebSockets cleanly (the SDK's optional memory-events socket)."""

import asyncio

from agentfield_project.asgi import application


def test_an_unknown_websocket_is_refused_without_an_error():
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws/anything-else", "headers": []}  # only the memory socket is served
    asyncio.run(application(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1000}]
