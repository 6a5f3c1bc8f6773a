"""The agent client against real sockets on 127.0.0.1: answers, failures, keep-alive and its edge cases."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from nodes import client
from tests.http_fakes import answer, header_lines
from tests.processes import free_port


@pytest.fixture(autouse=True)
def fresh_connections() -> Iterator[None]:
    # Connections are cached per thread; each test starts (and ends) without any.
    client._connections().clear()
    yield
    for connection in client._connections().values():
        connection.close()
    client._connections().clear()


def test_a_json_answer_is_parsed_and_the_request_carries_json_and_theheader_lines(raw_server):
    server = raw_server(answer(200, b'{"ok": true}'))
    result = client.post_json(server.url + "/reasoners/a", {"x": "é"}, {"X-Execution-ID": "exec_1"}, timeout=5)
    assert (result.status_code, result.body, result.ok, result.accepted) == (200, {"ok": True}, True, False)
    [request] = server.requests
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /reasoners/a HTTP/1.1")
    headers = dict(header_lines(head))
    assert headers["content-type"] == "application/json"
    assert headers["x-execution-id"] == "exec_1"
    assert body.decode() == '{"x":"é"}'


def test_202_is_accepted_and_a_text_answer_is_kept_as_text(raw_server):
    assert client.post_json(raw_server(answer(202, b"")).url, {}, {}, 5).accepted
    result = client.post_json(raw_server(answer(500, b"boom")).url, {}, {}, 5)
    assert (result.status_code, result.body, result.ok) == (500, "boom", False)
    assert result.describe() == "agent answered 500: boom"


def test_calls_reuse_one_keep_alive_connection(raw_server):
    server = raw_server(answer(200, b"{}"))
    results = [client.post_json(server.url + f"/reasoners/r{n}", {}, {}, 5) for n in range(5)]
    assert [result.status_code for result in results] == [200] * 5
    assert server.connections == 1


def test_an_agent_that_closes_after_each_answer_gets_a_new_connection_each_time(raw_server):
    server = raw_server(answer(200, b"{}", "Connection: close\r\n"))
    results = [client.post_json(server.url, {}, {}, 5) for _ in range(3)]
    assert [result.status_code for result in results] == [200] * 3
    assert server.connections == 3


def test_an_idle_connection_the_agent_dropped_is_replaced_without_a_failure(raw_server):
    # The agent keeps the connection open after answering, then drops it while it is idle.
    dropped = threading.Event()

    def answer_then_drop(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        dropped.set()
        return False

    server = raw_server(answer_then_drop)
    assert client.post_json(server.url, {}, {}, 5).ok
    assert dropped.wait(2)
    assert client.post_json(server.url, {}, {}, 5).ok
    assert server.connections == 2


def test_a_chunked_answer_is_read_whole(raw_server):
    def chunked(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n')
        return True

    server = raw_server(chunked)
    assert client.post_json(server.url, {}, {}, 5).body == {"a": 1}
    assert client.post_json(server.url, {}, {}, 5).body == {"a": 1}
    assert server.connections == 1


def test_an_oversized_answer_is_refused_and_its_connection_not_reused(raw_server, monkeypatch):
    monkeypatch.setattr(client, "MAX_BODY_BYTES", 10)
    server = raw_server(answer(200, b'{"big": "' + b"x" * 50 + b'"}'))
    result = client.post_json(server.url, {}, {}, 5)
    assert (result.status_code, result.error) == (200, "agent response too large")
    client.post_json(server.url, {}, {}, 5)
    assert server.connections == 2


def test_a_refused_connection_is_a_value_not_an_exception():
    result = client.post_json(f"http://127.0.0.1:{free_port()}/reasoners/a", {}, {}, 5)
    assert result.status_code is None
    assert result.error == "agent call failed: connection refused"


def test_an_agent_that_never_answers_times_out(raw_server):
    server = raw_server(lambda conn, request: threading.Event().wait(1) and False)
    result = client.post_json(server.url, {}, {}, timeout=0.3)
    assert result.status_code is None
    assert result.error.startswith("agent call timed out")


def test_an_answer_that_is_not_http_is_a_failure_value(raw_server):
    server = raw_server(lambda conn, request: conn.sendall(b"garbage\r\n\r\n") and False)
    result = client.post_json(server.url, {}, {}, 5)
    assert result.status_code is None
    assert result.error.startswith("agent call failed:")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///no-host", "not a url"])
def test_a_base_url_that_is_not_http_is_a_failure_value(url):
    result = client.post_json(url, {}, {}, 5)
    assert result.status_code is None
    assert result.error.startswith("agent call failed: InvalidAgentUrl")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://169.254.169.254/latest/meta-data", ["0.0.0.0/0"]),  # metadata: never, even when listed
        ("http://2130706433:9/reasoners/r", []),  # loopback spelled as an integer, not listed
        ("http://10.9.8.7:9/reasoners/r", ["127.0.0.0/8"]),
    ],
)
def test_an_address_agents_may_not_use_is_refused_before_any_connection(settings, url, allowed):
    settings.AGENTFIELD_AGENT_ALLOWED_CIDRS = allowed
    result = client.post_json(url, {}, {}, timeout=2)
    assert result.status_code is None and "agents may not use" in result.error


def test_the_connection_goes_to_the_checked_address_and_keeps_the_agents_host_name(raw_server):
    server = raw_server(answer(200, b"{}"))
    port = int(server.url.rsplit(":", 1)[1])
    assert client.agent_address("localhost", port) in ("127.0.0.1", "::1")
    result = client.post_json(f"http://localhost:{port}/reasoners/r", {}, {}, timeout=5)
    assert result.status_code == 200
    assert dict(header_lines(server.requests[0].partition(b"\r\n\r\n")[0]))["host"] == f"localhost:{port}"
