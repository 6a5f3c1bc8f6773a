"""The server judges a request before it reads its body, bounds how long it may take, redacts its log.

Each test talks raw HTTP to a real server (agentfield_project/runtime/daphne_server.py) so that it can
stop sending: an answer that arrives while most of the body is still unsent proves the body was
not read first.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentfield_project.runtime.daphne_server import GuardedRequest
from nodes import policy
from nodes.auth import issue_key
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e

GIB = 1024**3


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Read one response (the server closes the connection after a refusal)."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ")[1]), json.loads(body[:length]), head


def send_head(sock: socket.socket, method: str, path: str, headers: dict[str, str]) -> None:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


@pytest.fixture
def keyed_server(launch, db_url):
    """A server where keys are required; returns its URL and a valid key (its key set is warm)."""
    _, raw = issue_key("ops", policy.ADMIN)
    url = launch.server(
        AGENTFIELD_MAX_BODY_BYTES=1024 * 1024, AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS=3, AGENTFIELD_ACCESS_LOG="1"
    )
    assert http("GET", f"{url}/api/v1/nodes", headers={"X-API-Key": raw})[0] == 200
    return url, raw


def test_a_declared_gigabyte_is_refused_before_a_byte_of_it_is_read(keyed_server):
    url, key = keyed_server
    with connect(url) as sock:
        send_head(sock, "POST", "/api/v1/memory/set", {"X-API-Key": key, "Content-Length": str(GIB),
                                                        "Content-Type": "application/json"})  # fmt: skip
        status, body, head = read_answer(sock)
    assert (status, body["code"]) == (413, "payload_too_large")
    assert b"connection: close" in head.lower()


def rss_mib(pid: int) -> float:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.parametrize(
    ("framing", "refusal"),
    [
        ({"Content-Length": str(GIB)}, (413, "payload_too_large")),
        ({"Transfer-Encoding": "chunked"}, (401, "not_authenticated")),
    ],
    ids=["declared", "chunked"],
)
def test_a_gigabyte_sent_without_a_key_costs_the_server_no_memory(launch, keyed_server, framing, refusal):
    url, _ = keyed_server
    pid = launch.server_process.pid
    before = rss_mib(pid)
    chunk, sent = b"x" * (1024 * 1024), 0
    with connect(url) as sock:
        send_head(sock, "POST", "/api/v1/memory/set", {**framing, "Content-Type": "application/json"})
        try:
            for _ in range(256):  # the client pushes up to 256 MiB of the announced 1 GiB
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # refused and closed: the rest never left this process
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == refusal  # at its headers: too large as declared, or no key for a body
    grown = rss_mib(pid) - before
    assert grown < 16, f"the server grew {grown:.0f} MiB while refusing a body it never read"
    assert sent < 64 * 1024 * 1024  # the server closed the connection long before


def test_a_body_without_credentials_is_refused_before_it_is_read(keyed_server):
    url, _ = keyed_server
    with connect(url) as sock:
        send_head(sock, "POST", "/api/v1/execute/async/any.thing", {"Content-Length": "100000",
                                                                     "Content-Type": "application/json"})  # fmt: skip
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == (401, "not_authenticated")


def test_a_chunked_body_is_cut_off_at_the_limit(keyed_server):
    url, key = keyed_server
    chunk = b"x" * 65536
    offered = 64 * 1024 * 1024  # against a 1 MiB limit: far more than loopback's socket buffers can hold
    sent = 0
    with connect(url) as sock:
        send_head(sock, "POST", "/api/v1/memory/set", {"X-API-Key": key, "Transfer-Encoding": "chunked"})
        try:
            while sent < offered:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed the connection
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == (413, "payload_too_large")
    # The kernel buffers several MiB whatever the server does, so only an offer well past that shows
    # the server stopped reading (4 MiB was sometimes buffered whole on a loaded machine).
    assert sent < offered


def test_a_request_that_trickles_in_is_answered_408_and_closed(keyed_server):
    url, key = keyed_server
    with connect(url) as sock:
        sock.sendall(b"POST /api/v1/memory/set HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == (408, "request_timeout")


ONE_LONG_HEADER = "X-Big: " + "a" * 20000 + "\r\n"
MANY_HEADERS = "".join(f"X-Many-{i}: {'b' * 1000}\r\n" for i in range(20))


@pytest.mark.parametrize("headers", [ONE_LONG_HEADER, MANY_HEADERS], ids=["one-long-line", "many-lines"])
def test_oversized_headers_get_a_json_431(keyed_server, headers):
    url, _ = keyed_server
    with connect(url) as sock:
        sock.sendall(f"GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == (431, "headers_too_large")


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
        b"POST /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n",
        b"POST /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: nope\r\n\r\n",
    ],
    ids=["header-without-colon", "bad-chunk-size", "bad-content-length"],
)
def test_requests_twisted_cannot_parse_get_a_json_400(keyed_server, raw):
    url, _ = keyed_server
    with connect(url) as sock:
        sock.sendall(raw)
        status, body, _ = read_answer(sock)
    assert (status, body["code"]) == (400, "malformed_request")


def test_normal_requests_still_pass_and_a_key_in_the_query_string_is_not_logged(launch, keyed_server):
    url, key = keyed_server
    status, answer, _ = http("POST", f"{url}/api/v1/memory/set", {"key": "k", "data": 1, "scope": "global"},
                             {"X-API-Key": key})  # fmt: skip
    assert status == 200 and answer["data"] == 1
    assert http("GET", f"{url}/api/v1/nodes?api_key={key}")[0] == 401  # never read from the query string
    time.sleep(0.5)
    log = wait_until(lambda: (text := launch.server_process.output()) and "/api/v1/nodes?api_key=" in text and text)
    assert key not in log and "api_key=[REDACTED]" in log


@pytest.mark.django_db
def test_twisted_does_not_parse_form_fields_that_daphne_never_reads(monkeypatch):
    from twisted.web import http as twisted_http
    from twisted.web.test.requesthelper import DummyChannel

    def no_form_parsing(*args):
        raise AssertionError("Twisted parsed the Content-Type of a POST for form fields")

    monkeypatch.setattr(twisted_http, "_parseContentType", no_form_parsing)
    processed = []
    monkeypatch.setattr(GuardedRequest, "process", lambda request: processed.append(request.path))
    channel = DummyChannel()
    channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
    request = GuardedRequest(channel)
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
    request.gotLength(7)
    request.handleContentChunk(b"a=1&b=2")
    request.requestReceived(b"POST", b"/api/v1/memory/set?x=1", b"HTTP/1.1")
    assert processed == [b"/api/v1/memory/set"]


def test_one_sweep_answers_the_requests_past_their_deadline_and_only_those(monkeypatch, settings):
    """No timer per request: a request is listed with its deadline until its body is in, and the
    server's periodic sweep answers 408 to those still being read past it."""
    from twisted.web.test.requesthelper import DummyChannel

    from agentfield_project.runtime import daphne_server

    monkeypatch.setattr(GuardedRequest, "process", lambda request: None)
    settings.AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS = 0

    def request_on(channel: DummyChannel) -> GuardedRequest:
        channel.factory = SimpleNamespace(server=SimpleNamespace(protocol_connected=lambda request: None))
        return GuardedRequest(channel)

    done_channel, slow_channel = DummyChannel(), DummyChannel()
    done, slow = request_on(done_channel), request_on(slow_channel)
    assert {done, slow} <= set(daphne_server._reading)
    done.gotLength(0)
    done.requestReceived(b"POST", b"/api/v1/memory/set", b"HTTP/1.1")
    assert done not in daphne_server._reading
    daphne_server._sweep_slow_requests()
    assert slow not in daphne_server._reading
    assert b"408" in slow_channel.transport.written.getvalue()
    assert slow_channel.transport.disconnected and not done_channel.transport.written.getvalue()


def test_startup_objects_are_frozen_out_of_the_cyclic_gc_with_the_views_loaded():
    """A full collection walked every object loaded at startup and stalled all requests for 70-95 ms
    (bench scenario 3); the server freezes them once the URL conf has imported the views."""
    import gc
    import sys

    from agentfield_project.runtime.daphne_server import freeze_startup_objects

    before = len(gc.get_objects())
    try:
        freeze_startup_objects()
        assert "executions.api.views" in sys.modules
        assert gc.get_freeze_count() >= before // 2  # what was alive is frozen (minus cyclic garbage)
        assert len(gc.get_objects()) < before // 10  # and no longer walked by a collection
    finally:
        gc.unfreeze()
