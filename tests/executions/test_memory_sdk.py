"""The real SDK's memory client against a live server (daphne on 127.0.0.1)."""

import asyncio

import pytest
from agentfield.client import AgentFieldClient
from agentfield.execution_context import ExecutionContext
from agentfield.memory import GlobalMemoryClient, MemoryClient, ScopedMemoryClient

from tests.processes import http

pytestmark = pytest.mark.e2e


def context(run_id: str, session_id: str | None = None) -> ExecutionContext:
    return ExecutionContext(
        run_id=run_id,
        execution_id=f"exec_{run_id}",
        reasoner_name="process_corpus",
        agent_instance=None,
        session_id=session_id,
    )


async def sdk_round_trip(url: str) -> dict:
    client = AgentFieldClient(base_url=url)
    run = MemoryClient(client, context("run_sdk_1", session_id="sess-1"), agent_node_id="batch")
    other_run = MemoryClient(client, context("run_sdk_2"), agent_node_id="batch")
    seen: dict = {"default": await run.get("done", default=0)}
    await run.set("results", [{"item": 0, "summary": "s"}])
    await run.set("done", 1)
    await run.set("done", 2)
    await ScopedMemoryClient(run, "session", None).set("topic", "from session")
    await GlobalMemoryClient(run).set("config", {"temperature": 0.2})
    seen["done"] = await run.get("done", default=0)
    seen["results"] = await run.get("results", default=[])
    seen["other_run_done"] = await other_run.get("done", default=0)
    seen["topic"] = await run.get("topic")
    seen["config_via_fallback"] = await other_run.get("config")
    seen["exists"] = (await run.exists("done"), await run.exists("nope"))
    seen["keys"] = sorted(await run.list_keys("workflow"))
    await run.delete("done")
    seen["after_delete"] = await run.get("done", default="gone")
    return seen


def test_the_sdk_memory_client_checkpoints_and_resumes_per_run(launch):
    url = launch.server()
    seen = asyncio.run(sdk_round_trip(url))
    assert seen == {
        "default": 0,
        "done": 2,
        "results": [{"item": 0, "summary": "s"}],
        "other_run_done": 0,
        "topic": "from session",
        "config_via_fallback": {"temperature": 0.2},
        "exists": (True, False),
        "keys": ["done", "results"],
        "after_delete": "gone",
    }
    status, listed, _ = http("GET", f"{url}/api/v1/memory/list?scope=session", headers={"X-Session-ID": "sess-1"})
    assert status == 200 and [(e["key"], e["scope_id"]) for e in listed] == [("topic", "sess-1")]
