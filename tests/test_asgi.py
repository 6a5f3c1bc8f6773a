"""The ASGI entry point refuses WebSockets cleanly (the SDK's optional memory-events socket)."""

import asyncio

from agentfield_project.asgi import application


def test_a_websocket_handshake_is_refused_without_an_error():
    sent = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "websocket", "path": "/api/v1/memory/events/ws", "headers": []}
    asyncio.run(application(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1000}]
