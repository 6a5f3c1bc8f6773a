"""Kill-and-resume: the real batch agent is SIGKILLed mid-run and the same execution completes.

The dispatcher re-queues the execution of a dead agent under the same ids; the restarted agent
reads its checkpoints from workflow memory (scope id = the run id) and processes only the rest.
"""

import collections
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from nodes import policy
from nodes.auth import issue_key
from tests.processes import http, wait_until

pytestmark = pytest.mark.e2e

ITEMS = [f"document {i}: the quick brown fox jumps over the lazy dog" for i in range(50)]
# Short, so a killed agent is noticed quickly; not so short that a loaded machine fakes a death.
LIVENESS = {"AGENTFIELD_NODE_LIVENESS_SECONDS": 5}


def summarised(trace: Path) -> collections.Counter:
    lines = trace.read_text().splitlines() if trace.exists() else []
    return collections.Counter(json.loads(line)["user"] for line in lines)


@dataclass
class Api:
    """The server, called with one key: the run is fired and watched with a client key while the
    agent runs with an agent key (its checkpoints must work unchanged under the trust model)."""

    url: str
    key: str

    def call(self, method: str, path: str, body=None, headers=None):
        return http(method, f"{self.url}{path}", body, {"X-API-Key": self.key, **(headers or {})})


def active_instance(api: Api, node_id: str) -> str | None:
    status, body, _ = api.call("GET", f"/api/v1/nodes/{node_id}")
    return body["instance_id"] if status == 200 and body["health_status"] == "active" else None


def checkpoint(api: Api, run_id: str, key: str):
    status, body, _ = api.call("POST", "/api/v1/memory/get", {"key": key}, headers={"X-Workflow-ID": run_id})
    return body["data"] if status == 200 else None


def execution(api: Api, execution_id: str) -> dict:
    status, body, _ = api.call("GET", f"/api/v1/executions/{execution_id}")
    assert status == 200, body
    return body


def test_a_killed_batch_agent_resumes_the_same_execution_from_its_checkpoint(launch, fake_llm):
    llm_url, trace = fake_llm
    _, agent_key = issue_key("batch agents", policy.AGENT)
    url = launch.server(**LIVENESS)
    api = Api(url, issue_key("batch client", policy.CLIENT)[1])
    launch.dispatcher(**LIVENESS)
    keyed = {"AGENTFIELD_API_KEY": agent_key}
    agent = launch.agent("batch_agent.py", url, NODE_ID="batch", FAKE_LLM_BASE_URL=llm_url, **keyed)
    first_instance = wait_until(lambda: active_instance(api, "batch"), timeout=90, message="agent registration")

    status, accepted, _ = api.call("POST", "/api/v1/execute/async/batch.process_corpus", {"input": {"items": ITEMS}})
    assert status == 202, accepted
    execution_id, run_id = accepted["execution_id"], accepted["run_id"]

    done_before_kill = wait_until(
        lambda: (checkpoint(api, run_id, "done") or 0) >= 20 and checkpoint(api, run_id, "done"),
        timeout=120,
        interval=0.02,
        message="20 checkpoints",
    )
    agent.kill()
    assert execution(api, execution_id)["status"] in ("running", "queued")
    assert done_before_kill < len(ITEMS)

    launch.agent("batch_agent.py", url, NODE_ID="batch", FAKE_LLM_BASE_URL=llm_url, **keyed)
    wait_until(lambda: active_instance(api, "batch") not in (None, first_instance), timeout=90, message="restart")
    finished = wait_until(
        lambda: (body := execution(api, execution_id))["status"] in ("succeeded", "failed") and body,
        timeout=180,
        interval=0.2,
        message="the resumed execution to finish",
    )

    assert finished["status"] == "succeeded", finished
    assert (finished["execution_id"], finished["run_id"]) == (execution_id, run_id)
    assert finished["attempt"] >= 2
    assert finished["result"]["processed"] == len(ITEMS)
    assert [entry["item"] for entry in finished["result"]["results"]] == list(range(len(ITEMS)))
    assert checkpoint(api, run_id, "done") == len(ITEMS)

    counts = summarised(trace)
    assert set(counts) == set(ITEMS)
    twice = [item for item, count in counts.items() if count > 1]
    assert len(twice) <= 1 and all(counts[item] == 2 for item in twice), counts
    if twice:  # only the item in flight when the agent died
        assert ITEMS.index(twice[0]) in (done_before_kill, done_before_kill + 1)
