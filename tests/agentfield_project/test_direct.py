"""agentfield_project/runtime/direct.py: the SDK's hot routes answered by their view method directly.

Each case sends the same request twice through the server's synchronous path: once as the SDK
sends it (the direct path) and once with a cookie, which sends it through Django and DRF whole.
Both answers must agree: status, JSON body, and the headers a client reads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest
from django.db import connection

from agentfield_project.runtime import direct
from agentfield_project.runtime.sync_path import SyncPath
from executions import callbacks
from executions.models import Execution, Status, TraceEntry
from nodes import auth
from nodes.models import ApiKey
from tests.agentfield_project.test_sync_path import Recorder, call, run, scope
from tests.factories import make_execution, make_node

pytestmark = pytest.mark.django_db(transaction=True)

JSON = (b"content-type", b"application/json")
HOST = (b"host", b"127.0.0.1:8080")
COOKIE = (b"cookie", b"theme=dark")  # no session: only sends the request down Django's whole path
READ_HEADERS = (b"strict-transport-security", b"content-type", b"x-execution-id", b"x-run-id", b"location", b"retry-after", b"www-authenticate",
                b"x-frame-options", b"x-content-type-options", b"referrer-policy", b"content-security-policy",
                b"cross-origin-opener-policy")  # fmt: skip
VOLATILE = (
    "timestamp",
    "created_at",
    "updated_at",
    "completed_at",
    "started_at",
    "duration_ms",
    "execution_id",
    "run_id",
    "workflow_id",
    "id",
)


@pytest.fixture
def served(monkeypatch) -> list[str]:
    """The paths the direct path answered (in a request thread, or on the event loop)."""
    paths: list[str] = []
    respond, respond_batch, respond_on_loop = direct.respond, direct.respond_batch, direct.respond_on_loop

    def counting(view_class, kwargs, environ, body):
        paths.append(environ["PATH_INFO"])
        return respond(view_class, kwargs, environ, body)

    def counting_batch(view_class, requests):
        paths.extend(environ["PATH_INFO"] for _, environ, _ in requests)
        return respond_batch(view_class, requests)

    async def counting_on_loop(view_class, kwargs, environ, body):
        answer = await respond_on_loop(view_class, kwargs, environ, body)
        if answer is not None:
            paths.append(environ["PATH_INFO"])
        return answer

    monkeypatch.setattr(direct, "respond", counting)
    monkeypatch.setattr(direct, "respond_on_loop", counting_on_loop)
    monkeypatch.setattr(direct, "respond_batch", counting_batch)
    return paths


def send(method: str, path: str, body: object = None, headers: tuple = (), *, cookie: bool = False):
    raw = b"" if body is None else json.dumps(body).encode()
    sent = [HOST, *headers, *([JSON] if raw else []), *([COOKIE] if cookie else [])]
    status, answer_headers, content = run(SyncPath(Recorder(), threads=1), scope(method, path, sent), raw)
    return status, {name: answer_headers.get(name) for name in READ_HEADERS}, json.loads(content or b"null")


def _without_volatile(value: object) -> object:
    if isinstance(value, dict):
        return {key: "*" if key in VOLATILE else _without_volatile(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value


def both_ways(request: Callable[[], tuple], served: list[str]) -> tuple:
    """The answer of the direct path, after checking that Django's whole path answers the same."""
    count = len(served)
    method, path, body, headers = request()
    direct_answer = send(method, path, body, headers)
    assert len(served) == count + 1, "the request did not take the direct path"
    method, path, body, headers = request()
    django_answer = send(method, path, body, headers, cookie=True)
    assert len(served) == count + 1, "the request with a cookie took the direct path"
    status, headers_read, content = direct_answer
    assert (status, headers_read.keys()) == (django_answer[0], django_answer[1].keys())
    for name in READ_HEADERS:  # ids differ between the two requests; presence and shape must not
        if name in (b"x-execution-id", b"x-run-id", b"location"):
            assert (headers_read[name] is None) == (django_answer[1][name] is None), name
        else:
            assert headers_read[name] == django_answer[1][name], name
    assert _without_volatile(content) == _without_volatile(django_answer[2])
    return direct_answer


def running(node) -> Callable[[], tuple]:
    """A fresh running execution per call, and the terminal callback for it."""

    def request() -> tuple:
        execution = make_execution(node, status=Status.RUNNING, attempt=1)
        return "POST", f"/api/v1/executions/{execution.id}/status", {"status": "succeeded", "result": {"n": 1}}, ()

    return request


def test_each_hot_route_answers_as_djangos_whole_path_does(served):
    node = make_node("hot")
    execution = make_execution(node, status=Status.RUNNING, attempt=1)
    context = ((b"x-run-id", execution.run_id.encode()), (b"x-execution-id", execution.id.encode()))
    log = {"entries": [{"level": "info", "message": "one", "execution_id": execution.id}]}
    step = {"execution_id": execution.id, "status": "running", "reasoner_id": "echo", "agent_node_id": "hot"}
    cases = {
        "execute": lambda: ("POST", "/api/v1/execute/async/hot.echo", {"input": {"a": 1}}, context),
        "execute, unknown reasoner": lambda: ("POST", "/api/v1/execute/async/hot.nope", {"input": {}}, ()),
        "poll": lambda: ("GET", f"/api/v1/executions/{execution.id}", None, ()),
        "poll, unknown": lambda: ("GET", "/api/v1/executions/exec_missing", None, ()),
        "logs": lambda: ("POST", f"/api/v1/executions/{execution.id}/logs", log, ()),
        "logs, bad body": lambda: ("POST", f"/api/v1/executions/{execution.id}/logs", {"entries": "x"}, ()),
        "logs, unknown execution": lambda: ("POST", "/api/v1/executions/exec_missing/logs", log, ()),
        "step event": lambda: ("POST", "/api/v1/workflow/executions/events", step, ()),
        "heartbeat": lambda: ("POST", "/api/v1/nodes/hot/heartbeat", {"status": "ready"}, ()),
        "heartbeat, no body": lambda: ("POST", "/api/v1/nodes/hot/heartbeat", None, ()),
        "heartbeat, unknown node": lambda: ("POST", "/api/v1/nodes/gone/heartbeat", {}, ()),
        "memory set": lambda: ("POST", "/api/v1/memory/set", {"key": "k", "data": {"v": 1}}, context),
        "memory get": lambda: ("POST", "/api/v1/memory/get", {"key": "k"}, context),
        "memory get, miss": lambda: ("POST", "/api/v1/memory/get", {"key": "none"}, context),
        "callback": running(node),
        "callback, unknown status": lambda: ("POST", f"/api/v1/executions/{execution.id}/status", {"status": "x"}, ()),
    }
    statuses = {name: both_ways(request, served)[0] for name, request in cases.items()}
    assert statuses == {
        "execute": 202, "execute, unknown reasoner": 404, "poll": 200, "poll, unknown": 404, "logs": 202,
        "logs, bad body": 400, "logs, unknown execution": 404, "step event": 200, "heartbeat": 200,
        "heartbeat, no body": 200, "heartbeat, unknown node": 404, "memory set": 200, "memory get": 200,
        "memory get, miss": 404, "callback": 200, "callback, unknown status": 400,
    }  # fmt: skip
    assert TraceEntry.objects.filter(execution_id=execution.id, kind=TraceEntry.Kind.LOG).count() == 2


def test_malformed_json_is_the_same_400_on_both_paths(served):
    make_node("hot")
    for cookie in (False, True):
        status, _, content = run(
            SyncPath(Recorder(), threads=1),
            scope("POST", "/api/v1/nodes/hot/heartbeat", [HOST, JSON, *([COOKIE] if cookie else [])]),
            b'{"status": ',
        )
        assert status == 400 and json.loads(content)["code"] == "parse_error"
    assert served == ["/api/v1/nodes/hot/heartbeat"]


def test_keys_are_checked_as_drf_checks_them(served):
    make_node("hot")
    _, agent_key = auth.issue_key("agent", role="agent", node_ids=["other"])
    _, admin_key = auth.issue_key("admin")
    beat = lambda key: lambda: ("POST", "/api/v1/nodes/hot/heartbeat", {}, ((b"x-api-key", key.encode()),))  # noqa: E731
    missing = both_ways(lambda: ("POST", "/api/v1/nodes/hot/heartbeat", {}, ()), served)
    assert missing[0] == 401 and missing[1][b"www-authenticate"] == b'Bearer realm="api"'
    assert both_ways(beat("afk_wrong"), served)[0] == 401
    assert both_ways(beat(agent_key), served)[0] == 403  # an agent key serves only its own nodes
    assert both_ways(beat(admin_key), served)[0] == 200
    assert ApiKey.objects.get(name="admin").last_used_at is not None


def test_a_key_over_its_rate_gets_429_with_retry_after(served, settings):
    settings.AGENTFIELD_RATE_LIMITS = {**settings.AGENTFIELD_RATE_LIMITS, "node": "1/min:1"}
    make_node("hot")
    _, key = auth.issue_key("admin")
    headers = ((b"x-api-key", key.encode()),)
    assert send("POST", "/api/v1/nodes/hot/heartbeat", {}, headers)[0] == 200
    status, headers_read, content = send("POST", "/api/v1/nodes/hot/heartbeat", {}, headers)
    assert status == 429 and content["code"] == "throttled" and int(headers_read[b"retry-after"]) >= 1
    assert len(served) == 2


@pytest.mark.parametrize(
    "extra, query, body",
    [
        ((COOKIE,), b"", b"{}"),  # a staff session is DRF's to check (CSRF)
        ((), b"x=1", b"{}"),  # a query string: RejectNulCharactersMiddleware reads it
        (((b"content-type", b"text/plain"),), b"", b"{}"),  # DRF answers 415
        ((), b"", b"{}"),  # a body without a content type: DRF does not parse it
        (((b"content-type", b"application/json-patch+json"),), b"", b"{}"),  # not DRF's JSON: a 415
    ],
)
def test_anything_unusual_takes_djangos_whole_path(served, extra, query, body):
    make_node("hot")
    request_scope = scope("POST", "/api/v1/nodes/hot/heartbeat", [HOST, *extra], query)
    run(SyncPath(Recorder(), threads=1), request_scope, body)
    assert served == []


def test_routes_that_are_not_hot_take_djangos_whole_path(served):
    make_node("hot")
    options = run(SyncPath(Recorder(), threads=1), scope("OPTIONS", "/api/v1/nodes/hot/heartbeat", [HOST]))
    assert options[0] == 200 and b"POST" in options[1][b"allow"]  # DRF's OPTIONS, on the whole path
    assert send("GET", "/api/v1/nodes/hot")[0] == 200
    assert send("POST", "/api/v1/executions/batch-status", {"execution_ids": []})[0] in (200, 400)
    assert served == []


def test_the_requests_database_connection_goes_back_after_a_direct_request(served):
    make_node("hot")
    app = SyncPath(Recorder(), threads=1)
    assert run(app, scope("POST", "/api/v1/nodes/hot/heartbeat", [HOST, JSON]), b"{}")[0] == 200
    assert served and app.pool.submit(lambda: connection.connection is None).result()


def test_an_unexpected_error_is_a_logged_json_500(served, monkeypatch, caplog):
    make_node("hot")
    from nodes.api.views import HeartbeatView

    def broken(self, request, node_id):
        raise RuntimeError("boom")

    async def broken_on_loop(self, request, node_id):
        raise RuntimeError("boom on the loop")  # the thread path then answers it

    monkeypatch.setattr(HeartbeatView, "post", broken)
    monkeypatch.setattr(HeartbeatView, "post_on_loop", broken_on_loop)
    status, _, content = send("POST", "/api/v1/nodes/hot/heartbeat", {})
    assert (status, content) == (500, {"error": "internal server error", "code": "server_error"})
    assert "boom" in caplog.text and served
    assert "boom on the loop" in caplog.text  # the loop path's bug is logged, not only worked around


def test_a_terminal_callback_on_the_direct_path_finishes_the_execution(served):
    execution = make_execution(make_node("hot"), status=Status.RUNNING, attempt=1)
    status, _, content = send("POST", f"/api/v1/executions/{execution.id}/status", {"status": "failed", "error": "x"})
    assert (status, content["status"]) == (200, "failed")
    assert Execution.objects.get(pk=execution.id).status == Status.FAILED


def run_together(app: SyncPath, requests: list[tuple[dict, bytes]]) -> list[tuple[int, dict]]:
    """Send `requests` to `app` at once, on one event loop; (status, JSON) of each."""

    async def everything() -> list[tuple[int, dict, bytes]]:
        return await asyncio.gather(*(call(app, request_scope, body) for request_scope, body in requests))

    return [(status, json.loads(content)) for status, _, content in asyncio.run(everything())]


def test_log_posts_sent_together_are_stored_in_batches_and_refused_one_by_one(monkeypatch):
    node = make_node("hot")
    first, second = make_execution(node), make_execution(node)
    batches: list[int] = []
    respond_batch = direct.respond_batch
    monkeypatch.setattr(
        direct, "respond_batch", lambda view, requests: batches.append(len(requests)) or respond_batch(view, requests)
    )

    def post(execution_id: str, body: bytes) -> tuple[dict, bytes]:
        return scope("POST", f"/api/v1/executions/{execution_id}/logs", [HOST, JSON]), body

    def line(number: int) -> bytes:
        return json.dumps({"entries": [{"level": "info", "message": f"line {number}"}]}).encode()

    requests = [post(first.id if number % 2 else second.id, line(number)) for number in range(40)]
    requests[5] = post(first.id, b'{"entries": 3}')  # a bad body: a 400 for this request only
    requests[6] = post("exec_missing", line(6))  # an unknown execution: a 404 for this one only
    requests[7] = post(first.id, b'{"entries": [')  # JSON that does not parse
    answers = run_together(SyncPath(Recorder(), threads=1), requests)
    codes = [status for status, _ in answers]
    assert codes[5:8] == [400, 404, 400] and codes[:5] + codes[8:] == [202] * 37
    assert all(body == {"success": True, "stored": 1} for status, body in answers if status == 202)
    assert sum(batches) == 40 and len(batches) < 40  # several requests per batch
    stored = TraceEntry.objects.filter(kind=TraceEntry.Kind.LOG).order_by("id")
    assert stored.count() == 37
    # each execution's lines keep the order they were sent in
    for execution in (first, second):
        numbers = [
            int(message.split()[1])
            for message in stored.filter(execution_id=execution.id).values_list("message", flat=True)
        ]
        assert numbers == sorted(numbers)


def test_submits_sent_together_are_stored_in_batches_and_refused_one_by_one(monkeypatch):
    make_node("hot")
    batches: list[int] = []
    respond_batch = direct.respond_batch
    monkeypatch.setattr(
        direct, "respond_batch", lambda view, requests: batches.append(len(requests)) or respond_batch(view, requests)
    )

    def submit(target: str, body: bytes, *headers: tuple[bytes, bytes]) -> tuple[dict, bytes]:
        return scope("POST", f"/api/v1/execute/async/{target}", [HOST, JSON, *headers]), body

    requests = [submit("hot.echo", json.dumps({"input": {"n": number}}).encode()) for number in range(30)]
    requests[3] = submit("hot.nope", b'{"input": {}}')  # an unknown reasoner: a 404 for this one only
    requests[4] = submit("hot.echo", b'{"input": 3}')  # a bad body: a 400
    requests[5] = submit("hot.echo", b'{"input": {')  # JSON that does not parse
    requests[6] = submit("hot.echo", b'{"input": {}}', (b"idempotency-key", b"once"))
    requests[7] = submit("hot.echo", b'{"input": {}}', (b"idempotency-key", b"once"))  # the same again
    answers = run_together(SyncPath(Recorder(), threads=1), requests)
    codes = [status for status, _ in answers]
    assert codes[3:6] == [404, 400, 400] and sorted(codes[6:8]) == [200, 202]
    assert codes[:3] + codes[8:] == [202] * 25
    assert answers[6][1]["execution_id"] == answers[7][1]["execution_id"]
    assert sum(batches) == 30 and len(batches) < 30  # several requests per batch
    stored = {execution.id: execution.input for execution in Execution.objects.all()}
    assert len(stored) == 26
    for number, (status, body) in enumerate(answers):
        if status == 202 and number not in (6, 7):
            assert stored[body["execution_id"]] == {"n": number}  # each request got its own execution


def test_step_events_sent_together_are_stored_in_batches_and_refused_one_by_one(monkeypatch):
    node = make_node("hot")
    execution = make_execution(node)
    _, admin_key = auth.issue_key("admin")
    _, other_agent = auth.issue_key("agent", role="agent", node_ids=["other"])
    batches: list[int] = []
    respond_batch = direct.respond_batch
    monkeypatch.setattr(
        direct, "respond_batch", lambda view, requests: batches.append(len(requests)) or respond_batch(view, requests)
    )

    def event(body: object, key: str = admin_key) -> tuple[dict, bytes]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return scope("POST", "/api/v1/workflow/executions/events", [HOST, JSON, (b"x-api-key", key.encode())]), raw

    def step(number: int) -> dict:
        return {"execution_id": execution.id, "status": "running" if number % 2 else "succeeded", "reasoner_id": "echo"}

    requests = [event(step(number)) for number in range(24)]
    requests[2] = event([1, 2])  # not an object: a 400 for this one only
    requests[3] = event({"status": "running"})  # no execution_id: a 400
    requests[4] = event(step(4), other_agent)  # an agent key of another node may not see it: a 404
    requests[5] = event(b'{"execution_id": ')  # JSON that does not parse
    answers = run_together(SyncPath(Recorder(), threads=1), requests)
    codes = [status for status, _ in answers]
    assert codes[2:6] == [400, 400, 404, 400] and codes[:2] + codes[6:] == [200] * 20
    assert all(body == {"success": True} for status, body in answers if status == 200)
    assert sum(batches) == 24 and len(batches) < 24
    stored = TraceEntry.objects.filter(kind=TraceEntry.Kind.STEP, execution_id=execution.id).order_by("id")
    assert [entry.message for entry in stored] == [
        f"step {step(number)['status']}" for number in range(24) if number not in (2, 3, 4, 5)
    ]
    assert stored[0].data == {"status": "succeeded", "reasoner_id": "echo"} and stored[0].level == "info"


def test_a_key_is_checked_for_each_log_post_of_a_batch():
    node = make_node("hot")
    execution = make_execution(node)
    _, admin_key = auth.issue_key("admin")
    _, other_agent = auth.issue_key("agent", role="agent", node_ids=["other"])
    body = json.dumps({"entries": [{"message": "x"}]}).encode()
    path = f"/api/v1/executions/{execution.id}/logs"
    # an agent key of another node may not even see the execution: 404, as on the whole path
    keys = [admin_key, None, "afk_wrong", other_agent, admin_key]
    requests = [
        (scope("POST", path, [HOST, JSON, *([(b"x-api-key", key.encode())] if key else [])]), body) for key in keys
    ]
    statuses = [status for status, _ in run_together(SyncPath(Recorder(), threads=1), requests)]
    assert statuses == [202, 401, 401, 404, 202]
    assert TraceEntry.objects.filter(execution_id=execution.id).count() == 2


def test_a_batch_that_fails_answers_each_of_its_requests(monkeypatch, caplog):
    execution = make_execution(make_node("hot"))

    def broken(posts, now):
        raise RuntimeError("the insert broke")

    monkeypatch.setattr(callbacks, "store_log_posts", broken)
    body = json.dumps({"entries": [{"message": "x"}]}).encode()
    requests = [(scope("POST", f"/api/v1/executions/{execution.id}/logs", [HOST, JSON]), body)] * 3
    answers = run_together(SyncPath(Recorder(), threads=1), requests)
    assert answers == [(500, {"error": "internal server error", "code": "server_error"})] * 3
    assert "the insert broke" in caplog.text


@pytest.mark.parametrize(
    "path, host, status",
    [
        ("/api/v1/nodes/hot/heartbeat", b"evil.example", 400),  # ALLOWED_HOSTS, as CommonMiddleware applies it
        ("/api/v1/executions/exec%00/logs", b"127.0.0.1", 400),  # NUL in the URL: RejectNulCharactersMiddleware
    ],
)
def test_a_request_the_middlewares_refuse_is_refused_as_before(served, path, host, status):
    make_node("hot")
    path = path.replace("%00", "\x00")  # as daphne hands over the decoded path
    request_scope = scope("POST", path, [(b"host", host), JSON])
    answer_status, _, content = run(SyncPath(Recorder(), threads=1), request_scope, b'{"entries": []}')
    assert answer_status == status and json.loads(content)["code"] in ("bad_request", "parse_error")
    assert served == []


def test_the_hosts_judged_are_remembered_but_a_change_of_allowed_hosts_applies_at_once(served, settings):
    make_node("hot")

    def heartbeat() -> int:
        request = scope("POST", "/api/v1/nodes/hot/heartbeat", [HOST, JSON])
        return run(SyncPath(Recorder(), threads=1), request, b"{}")[0]

    assert heartbeat() == 200 and heartbeat() == 200
    settings.ALLOWED_HOSTS = ["agents.example"]
    assert heartbeat() == 400  # refused by the whole path, as CommonMiddleware refuses it
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    assert heartbeat() == 200


def test_behind_https_the_hsts_header_is_sent_as_securitymiddleware_sends_it(served, settings):
    settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = 3600, True
    make_node("hot")
    for cookie in (False, True):
        request_scope = {**scope("POST", "/api/v1/nodes/hot/heartbeat", [HOST, JSON, *([COOKIE] if cookie else [])]),
                         "scheme": "https"}  # fmt: skip
        status, headers, _ = run(SyncPath(Recorder(), threads=1), request_scope, b"{}")
        assert status == 200 and headers[b"strict-transport-security"] == b"max-age=3600; includeSubDomains"
    assert len(served) == 1
