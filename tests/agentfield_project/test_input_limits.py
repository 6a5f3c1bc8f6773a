"""Every hostile body, header or parameter gets a clear 4xx JSON error (never a 500), and nothing is written."""

from __future__ import annotations

import json
import socket

import pytest
from django.test import override_settings

from nodes.models import Node

pytestmark = pytest.mark.django_db

REGISTER = "/api/v1/nodes/register"


def post_raw(api, raw: bytes | str, url: str = REGISTER, content_type: str = "application/json"):
    return api.post(url, data=raw, content_type=content_type)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
@pytest.mark.parametrize("url", [REGISTER, "/api/v1/execute/async/echo.echo", "/api/v1/execute/echo.echo"])
def test_an_oversized_body_is_a_json_413(api, url):
    body = json.dumps({"id": "echo", "base_url": "http://localhost:1", "input": {"p": "x" * 2048}})
    response = post_raw(api, body, url)
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large", "code": "payload_too_large"}
    assert not Node.objects.exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 100_000, "JSON nested deeper than 64 levels"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, "JSON nested deeper than 64 levels"),
        ('{"id": "e", "base_url": "http://a", "metadata": ' + '{"a":' * 70 + "1" + "}" * 71, "nested deeper"),
        ('{"id": "ec\\u0000ho", "base_url": "http://a"}', "NUL characters"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"k\\u0000": 1}}', "NUL characters"),
        ('{"id": "\\ud800", "base_url": "http://a"}', "lone surrogate"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"n": NaN}}', "NaN is not valid JSON"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"n": -Infinity}}', "-Infinity is not valid JSON"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"n": 1e400}}', "number out of range"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"n": 9223372036854775808}}', "integer out of range"),
        ('{"id": "e", "base_url": "http://a", "metadata": {"n": ' + "9" * 5000 + "}}", "malformed JSON"),
        ('{"id": "a", "id": "b", "base_url": "http://a"}', "duplicate key 'id'"),
        ("\xff\xfe", "malformed JSON"),
        ('{"id": "e"', "malformed JSON"),
        ("   ", "request body is empty"),
    ],
    ids=[
        "brackets", "deep-objects", "deep-field", "nul", "nul-key", "surrogate", "nan", "infinity", "1e400",
        "int64", "5000-digits", "duplicate-key", "not-utf8", "truncated", "blank",
    ],
)  # fmt: skip
def test_hostile_json_is_a_readable_400(api, raw, message):
    response = post_raw(api, raw.encode("utf-8", "surrogatepass") if raw != "\xff\xfe" else b"\xff\xfe")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not Node.objects.exists()


def test_a_body_that_is_not_json_is_a_415(api):
    response = post_raw(api, "id=echo", content_type="text/plain")
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["error"]


def test_the_largest_allowed_values_are_accepted(api):
    body = {"id": "e", "base_url": "http://127.0.0.1:9", "metadata": {"n": 2**63 - 1, "f": 1.5e308, "deep": [[[[]]]]}}
    assert post_raw(api, json.dumps(body)).status_code == 201


@pytest.mark.parametrize(
    "query", ["limit=-1", "limit=501", "limit=99999999999999999999999", "offset=-5", "offset=abc", "limit=1.5"]
)
def test_out_of_range_pagination_is_a_400(api, query):
    response = api.get(f"/api/v1/executions?{query}")
    assert response.status_code == 400
    assert "must be an integer from 0 to" in response.json()["error"]


@pytest.mark.parametrize("execution_id", ["not-a-uuid", "x" * 5000, "..%2F..%2Fetc"])
def test_odd_execution_ids_are_a_404(api, execution_id):
    response = api.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def _raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _chunked_post(url: str, body: bytes) -> bytes:
    head = b"POST /api/v1/nodes/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    return _raw_request(url, head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)


@pytest.mark.e2e
def test_a_real_server_parses_chunked_bodies_and_limits_them(launch):
    url = launch.server(AGENTFIELD_MAX_BODY_BYTES=100_000)
    small = _chunked_post(url, json.dumps({"id": "chunky", "base_url": "http://localhost:1"}).encode())
    assert small.startswith(b"HTTP/1.1 201")
    big = _chunked_post(
        url, json.dumps({"id": "big", "base_url": "http://a", "metadata": {"p": "x" * 200_000}}).encode()
    )
    assert big.startswith(b"HTTP/1.1 413") and b'"code": "payload_too_large"' in big
    assert list(Node.objects.values_list("id", flat=True)) == ["chunky"]


@pytest.mark.e2e
def test_a_real_server_refuses_huge_or_numerous_headers_without_a_500(launch):
    url = launch.server()
    huge = (
        b"GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\nConnection: close\r\n\r\n"
    )
    answer = _raw_request(url, huge)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4")  # the server drops the connection or answers 4xx
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(2000))
    answer = _raw_request(
        url, b"GET /api/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"Connection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400")
    status_line = _raw_request(url, b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert status_line.startswith(b"HTTP/1.1 200")  # and it still serves


@pytest.mark.parametrize(
    "url",
    ["/api/v1/executions/%00", "/api/v1/nodes/a%00b", "/api/v1/nodes?team_id=%00", "/api/v1/executions?status=%00"],
)
def test_a_nul_in_the_url_is_a_400(api, url):
    response = api.get(url)
    assert response.status_code == 400
    assert "NUL characters" in response.json()["error"]


@pytest.mark.parametrize("url", ["/api/v1/no-such-route", "/api/v1/executions/a/b/c", "/api/v1/vc/verify"])
def test_unknown_api_routes_are_a_json_404(api, url):
    response = api.post(url)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unknown_pages_outside_the_api_stay_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
