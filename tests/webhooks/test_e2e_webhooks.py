"""End to end: a real SDK agent finishes, the receiver gets one signed webhook, and the API lists it."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from standardwebhooks import Webhook as StandardWebhook

from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e
SECRET = "whsec_your_signing_secret"


def node_active(url: str) -> bool:
    status, body, _ = http("GET", f"{url}/api/v1/nodes/echo")
    return status == 200 and body["health_status"] == "active"


def fire(url: str, target: str, payload: dict, hook: str) -> str:
    webhook = {"url": hook, "secret": SECRET, "headers": {"X-Tenant": "acme"}}
    status, body, _ = http("POST", f"{url}/api/v1/execute/async/{target}", {"input": payload, "webhook": webhook})
    assert status == 202 and body["webhook_registered"] is True, body
    return body["execution_id"]


def received_for(receiver, execution_id: str) -> list:
    return [r for r in receiver.received if json.loads(r.body)["execution_id"] == execution_id]


def test_terminal_executions_send_one_signed_webhook_each_and_never_before(launch, receiver, delivery_worker):
    url = launch.server()
    launch.dispatcher()
    delivery_worker()
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: node_active(url), timeout=60, message="agent registration")

    slow = fire(url, "echo.slow", {"seconds": 2}, receiver.url("/hook"))
    wait_until(lambda: http("GET", f"{url}/api/v1/executions/{slow}")[1]["status"] == "running", timeout=30)
    assert received_for(receiver, slow) == []  # running: no webhook yet
    done = fire(url, "echo.echo", {"message": "hi"}, receiver.url("/hook"))
    boom = fire(url, "echo.boom", {"message": "kaput"}, receiver.url("/hook"))
    wait_until(lambda: all(received_for(receiver, e) for e in (slow, done, boom)), timeout=60, message="webhooks")

    for execution_id in (slow, done, boom):
        [request] = received_for(receiver, execution_id)
        digest = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["X-AgentField-Signature"], f"sha256={digest}")
        StandardWebhook(SECRET.encode()).verify(request.body, request.headers, json_parse=False)
        assert request.headers["X-Tenant"] == "acme" and request.headers["X-AgentField-Attempt"] == "1"
    completed = json.loads(received_for(receiver, done)[0].body)
    assert completed["event"] == "execution.completed" and completed["status"] == "succeeded"
    assert completed["target"] == "echo.echo" and completed["type"] == "reasoner"
    assert completed["result"]["echo"] == "hi" and "error_message" not in completed
    failed = json.loads(received_for(receiver, boom)[0].body)
    assert failed["event"] == "execution.failed" and "kaput" in failed["error_message"]
    assert received_for(receiver, boom)[0].headers["X-AgentField-Event"] == "execution.failed"

    status, body, _ = http("GET", f"{url}/api/v1/executions/{done}")
    assert status == 200
    [event] = body["webhook_events"]
    assert event["status"] == "delivered" and event["http_status"] == 200 and event["attempt"] == 1
    assert event["delivery_id"] == received_for(receiver, done)[0].headers["webhook-id"]
