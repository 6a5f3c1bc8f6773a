"""Django's synchronous request path under daphne, in one thread hop per request.

Every API route but three is a synchronous view (DRF). Under Django's ASGIHandler such a request
crosses between the event loop and a thread several times (the middleware chain, the view, the
response's close and its signals), and each crossing wakes the loop and a thread: on this
machine that was about 1–1.7 ms of CPU per request, more than many views cost themselves (bench
scenario 11). Here the event loop reads the body (daphne has already judged its size and
credentials, see daphne_server.py), then one thread runs the request as a WSGI server would,
through Django's public WSGIHandler with the sync middleware chain, and hands back the finished
response, which the loop sends.

In that thread a view marked `served_directly` (the SDK's hot routes) is called by direct.py without
Django's request layers, when the request is plain enough (no cookie, no query, a JSON body).
Such a view may also have a `<method>_on_loop` coroutine (the heartbeat): it is tried first, on
the event loop with no thread at all, and hands the request to the thread when it cannot answer
it there (direct.respond_on_loop, agentfield_project/postgres/loop_db.py).

Only requests whose view is a coroutine function stay on the ASGI path: the synchronous execute,
which waits for the callback, and the event stream (executions/api/sync.py, executions/sse.py).
They hold no thread while they wait. Everything else, including the admin and the dashboard,
takes this path; a request may first be held on the event loop by `before` (the SDK's status
polls, executions/api/pacing.py), which keeps no thread either.
"""

from __future__ import annotations

import asyncio
import functools
import io
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.urls import Resolver404, resolve

from agentfield_project.runtime import direct
from agentfield_project.runtime.batching import Batches

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
EXPRESS_THREADS = 2


class SyncPath:
    """ASGI app: synchronous views in one pooled thread each; async views go to `asgi_app`."""

    def __init__(
        self,
        asgi_app: Callable,
        threads: int | None = None,
        before: Callable[[dict], Awaitable[None]] | None = None,
        express: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.asgi_app = asgi_app
        self.before = before  # awaited on the event loop first: it may hold the request (a paced poll)
        self.wsgi = WSGIHandler()
        size = threads or settings.AGENTFIELD_REQUEST_THREADS
        self.pool = ThreadPoolExecutor(size, thread_name_prefix="request")
        # Requests for which `express(path)` is true (the agents' heartbeats) have threads of their
        # own: behind a burst of a thousand app.calls they would wait their turn for seconds, and
        # the SDK gives a heartbeat 5 s before it declares the server lost and stops its calls.
        self.express = express
        self.express_pool = ThreadPoolExecutor(EXPRESS_THREADS, thread_name_prefix="request-express")
        self.batches = Batches()  # requests to views with `post_batch` (the SDK's log lines), see batching.py

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        route = None if scope["type"] != "http" else _route(scope["path"])
        if route is None or route.is_async:
            await self.asgi_app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        if self.before is not None:
            await self.before(scope)
        status, headers, content = await self._answer(route, scope, body)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, route: Route, scope: dict, body: bytes) -> Response:
        env = environ(scope, body)
        plain = direct.accepts(env, body)
        if plain and direct.on_loop(route.view_class, scope["method"]):
            answer = await direct.respond_on_loop(route.view_class, route.kwargs, env, body)
            if answer is not None:
                return answer
        if plain and direct.batches(route.view_class, scope["method"]):
            return await self.batches.answer(route.view_class, (route.kwargs, env, body))
        if plain and direct.serves(route.view_class, scope["method"]):
            call = functools.partial(direct.respond, route.view_class, route.kwargs, env, body)
        else:
            call = functools.partial(self._respond, env)
        pool = self.express_pool if self.express(scope["path"]) else self.pool
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    def _respond(self, env: dict[str, Any]) -> Response:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started["status"] = int(status.split(" ", 1)[0])
            started["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

        result = self.wsgi(env, start_response)
        try:
            content = b"".join(result)
        finally:
            result.close()  # request_finished: the request's database connection goes back to the pool
        return started["status"], started["headers"], content


@dataclass(frozen=True)
class Route:
    is_async: bool  # the view waits or streams: it stays on the ASGI path (so do static files)
    view_class: type | None = None  # a class-based view's class (direct.py may call it)
    kwargs: dict[str, Any] = field(default_factory=dict)


# The SDK asks for the same paths again and again (its node's heartbeat, an execution's status,
# logs and memory): remembering the answer saves resolving every URL twice.
@functools.lru_cache(maxsize=4096)
def _route(path: str) -> Route:
    if path.startswith(settings.STATIC_URL):
        return Route(is_async=True)
    try:
        match = resolve(path)
    except Resolver404:
        return Route(is_async=False)  # Django's 404 JSON, on the sync path
    return Route(iscoroutinefunction(match.func), getattr(match.func, "cls", None), match.kwargs)


async def _read_body(receive: Callable) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def environ(scope: dict, body: bytes) -> dict[str, Any]:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope whose body has been read."""
    server = scope.get("server") or ("localhost", 80)
    env: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
        "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1] or 80),
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "CONTENT_LENGTH": str(len(body)),  # the body as read, whether it was declared or chunked
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name == "CONTENT_LENGTH":
            continue
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        env[key] = f"{env[key]},{value}" if key in env else value
    return env
