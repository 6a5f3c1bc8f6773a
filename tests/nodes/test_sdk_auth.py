"""The real SDK, given AGENTFIELD_API_KEY, registers and heart-beats with a server that requires keys."""

import pytest

from nodes.auth import issue_key
from nodes.models import ApiKey
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e


def test_sdk_agent_with_an_api_key_registers_where_keys_are_required(launch):
    key, raw = issue_key("agents")
    url = launch.server()
    status, body, _ = http("GET", f"{url}/api/v1/nodes?show_all=true")
    assert status == 401 and body["code"] == "not_authenticated"

    launch.agent("echo_agent.py", url, NODE_ID="keyed", AGENTFIELD_API_KEY=raw)
    headers = {"X-API-Key": raw}

    def ready():
        status, body, _ = http("GET", f"{url}/api/v1/nodes/keyed", headers=headers)
        return status == 200 and body["lifecycle_status"] == "ready"

    wait_until(ready, timeout=60, message="the keyed agent to register and heart-beat")
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None
    status, _, _ = http("POST", f"{url}/api/v1/nodes/keyed/heartbeat", {"status": "ready"})
    assert status == 401
