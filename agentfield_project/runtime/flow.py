"""Back-pressure for long-lived responses: a stream can tell when its client stopped reading.

daphne hands every body chunk straight to Twisted, which buffers without limit, so an ASGI app
never waits on a slow client and an unread event stream would grow in memory forever. Twisted
does tell a registered push producer to pause when the socket's send buffer is full and to
resume when it drains; this middleware registers one such producer per streamed request and puts
it in the scope (`scope[SCOPE_KEY]`), where the stream checks it before writing. Under another
server (or in tests without daphne) there is no producer and the stream is always writable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

SCOPE_KEY = "agentfield.flow"
REQUEST_KEY = "agentfield.twisted_request"


class Writability:
    """A Twisted push producer that only records whether the client's socket can take more."""

    def __init__(self) -> None:
        self.paused = False
        self.listeners: list[Callable[[], None]] = []

    def pauseProducing(self) -> None:  # noqa: N802  (Twisted IPushProducer names)
        self.paused = True
        self._notify()

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        self._notify()

    def stopProducing(self) -> None:  # noqa: N802
        # The connection is going away; http.disconnect tells the app. Writes are dropped anyway.
        self.paused = False
        self._notify()

    def _notify(self) -> None:
        for listener in list(self.listeners):
            listener()


ALWAYS_WRITABLE = Writability()


class FlowControl:
    """ASGI middleware: give HTTP requests under `prefixes` a Writability in their scope."""

    def __init__(self, app: Any, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        request = scope.get(REQUEST_KEY)  # the Twisted request, put there by daphne_server.GuardedServer
        if scope["type"] != "http" or request is None or not scope["path"].startswith(self.prefixes):
            return await self.app(scope, receive, send)
        flow = Writability()
        registered = False

        def release() -> None:
            nonlocal registered
            if registered:
                registered = False
                try:
                    request.unregisterProducer()
                except AttributeError:  # the request already let go of its channel (connection lost)
                    pass

        async def watched_send(message: dict) -> None:
            nonlocal registered
            if message["type"] == "http.response.start" and not request.producer:
                request.registerProducer(flow, True)
                registered = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                release()  # Twisted insists the producer is gone before the response finishes
            await send(message)

        try:
            await self.app({**scope, SCOPE_KEY: flow}, receive, watched_send)
        finally:
            release()
