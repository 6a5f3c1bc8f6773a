"""agentfield_project/runtime/sync_path.py: synchronous views in one thread hop; async views on the event loop."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from agentfield_project.runtime.sync_path import SyncPath, environ


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]] = (), query: bytes = b"") -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }


def test_the_environ_carries_headers_query_and_the_body_as_read():
    headers = [(b"content-type", b"application/json"), (b"x-api-key", b"k1"), (b"accept", b"a"), (b"accept", b"b"),
               (b"content-length", b"999")]  # fmt: skip
    env = environ(scope("POST", "/api/v1/memory/set", headers, b"a=1"), b'{"key": "k"}')
    assert (env["REQUEST_METHOD"], env["PATH_INFO"], env["QUERY_STRING"]) == ("POST", "/api/v1/memory/set", "a=1")
    assert env["CONTENT_TYPE"] == "application/json" and env["HTTP_X_API_KEY"] == "k1"
    assert env["HTTP_ACCEPT"] == "a,b"  # repeated headers joined, as Django's ASGI request does
    assert env["CONTENT_LENGTH"] == "12"  # the body read, not what was declared (or chunked)
    assert env["wsgi.input"].read() == b'{"key": "k"}'


def test_a_non_ascii_path_survives_the_wsgi_latin_1_round_trip():
    env = environ(scope("GET", "/api/v1/executions/exécution"), b"")
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/api/v1/executions/exécution"


async def call(app: SyncPath, request_scope: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    """One request to `app` on the running event loop: its status, headers and body."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(request_scope, receive, send)
    start, content = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    return start["status"], dict(start["headers"]), content


def run(app: SyncPath, request_scope: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
    return asyncio.run(call(app, request_scope, body))


class Recorder:
    """The ASGI app behind the sync path: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, request_scope: dict, receive, send) -> None:
        self.paths.append(request_scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.django_db(transaction=True)
def test_a_synchronous_view_runs_in_a_request_thread_and_its_answer_comes_back_whole():
    behind = Recorder()
    status, headers, content = run(SyncPath(behind, threads=2), scope("GET", "/api/v1/health"))
    assert status == 200 and json.loads(content)["status"] in ("ok", "healthy")
    assert headers[b"content-type"].startswith(b"application/json")
    assert behind.paths == []  # never reached the ASGI handler


@pytest.mark.parametrize(
    "path",
    [
        "/api/ui/v1/executions/events",  # the event stream
        "/api/v1/execute/echo.work",  # the synchronous execute waits for the callback
        "/static/dashboard/dashboard.js",
    ],
)
def test_waiting_streaming_and_static_routes_stay_on_the_event_loop(path):
    behind = Recorder()
    assert run(SyncPath(behind, threads=1), scope("GET", path))[0] == 299
    assert behind.paths == [path]


@pytest.mark.django_db(transaction=True)
def test_an_unknown_path_is_djangos_json_404_on_the_sync_path():
    behind = Recorder()
    status, _, content = run(SyncPath(behind, threads=1), scope("GET", "/no/such/route"))
    assert status == 404 and behind.paths == []


@pytest.mark.django_db(transaction=True)
def test_a_synchronous_request_is_first_handed_to_the_hold_hook_on_the_event_loop():
    held = []

    async def before(request_scope: dict) -> None:
        held.append(request_scope["path"])

    assert run(SyncPath(Recorder(), threads=1, before=before), scope("GET", "/api/v1/health"))[0] == 200
    assert held == ["/api/v1/health"]


@pytest.mark.django_db(transaction=True)
def test_express_requests_are_served_while_every_request_thread_is_busy():
    app = SyncPath(Recorder(), threads=1, express=lambda path: path == "/api/v1/health")
    release = threading.Event()
    busy = app.pool.submit(release.wait, 60)  # a slow request holds the only request thread
    try:
        assert run(app, scope("GET", "/api/v1/health"))[0] == 200
        assert not busy.done()
    finally:
        release.set()
