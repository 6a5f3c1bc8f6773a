"""Under ASGI, middleware hooks run on the event loop and only blocking ones hand off to a thread."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from asgiref.sync import SyncToAsync
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpResponse
from django.test import RequestFactory

from agentfield_project.asgi import django_application
from agentfield_project.inline import MessageMiddleware, SessionMiddleware
from executions.models import Execution


def asgi_request(method: str, path: str, body: bytes = b"", headers: tuple = ()) -> tuple[int, dict, bytes]:
    """One request through the project's Django ASGI handler (its middleware and threads)."""
    if not any(name == b"transfer-encoding" for name, _ in headers):
        headers = ((b"content-length", str(len(body)).encode()), *headers)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the client never disconnects
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(django_application(scope, receive, send))
    headers_sent = {key.decode().lower(): value.decode() for key, value in sent[0]["headers"]}
    return sent[0]["status"], headers_sent, b"".join(message.get("body", b"") for message in sent[1:])


@pytest.fixture
def hand_offs(monkeypatch) -> Counter:
    """Counts sync_to_async calls by the name of the function handed to a thread."""
    counts: Counter = Counter()
    original = SyncToAsync.__call__

    def counted(self, *args, **kwargs):
        counts[getattr(self.func, "__qualname__", repr(self.func))] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return counts


def test_an_async_execute_hands_off_to_the_request_thread_four_times(committed_node, hand_offs):
    body = json.dumps({"input": {"q": 1}}).encode()
    status, headers, content = asgi_request(
        "POST", "/api/v1/execute/async/batch.work", body, ((b"content-type", b"application/json"),)
    )
    assert status == 202, content
    assert json.loads(content)["status"] == "queued"
    assert Execution.objects.count() == 1
    # request_started, the view, the DRF render, response.close (request_finished): every
    # middleware hook ran on the event loop.
    assert sum(hand_offs.values()) == 4, hand_offs
    assert headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in headers


def test_a_chunked_body_is_still_read_in_the_request_thread(committed_node, hand_offs):
    body = json.dumps({"input": {}}).encode()
    chunked = ((b"content-type", b"application/json"), (b"transfer-encoding", b"chunked"))
    status, _, content = asgi_request("POST", "/api/v1/execute/async/batch.work", body, chunked)
    assert status == 202, content
    assert hand_offs["ChunkedBodyMiddleware.process_request"] == 1


def test_a_modified_session_or_stored_messages_are_saved_in_the_thread():
    response = HttpResponse()
    middleware = SessionMiddleware(lambda request: response)
    request = RequestFactory().get("/")
    request.session = SessionStore()
    assert not middleware.response_needs_thread(request, response)
    request.session["key"] = "value"
    assert middleware.response_needs_thread(request, response)

    messages = MessageMiddleware(lambda request: response)
    messages.process_request(request)
    assert not messages.response_needs_thread(request, response)
    request._messages.add(20, "saved")
    assert messages.response_needs_thread(request, response)
