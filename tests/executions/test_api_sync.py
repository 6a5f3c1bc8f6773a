"""POST /api/v1/execute/{target}: waits for the terminal status (a thread plays the agent's callback)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.utils import timezone

from executions import callbacks
from executions.models import Execution
from tests.processes import wait_until


def finish_when_queued(body: dict) -> threading.Thread:
    """In another thread (own connection): wait for the execution, then apply the agent's callback."""

    def run() -> None:
        try:
            execution = wait_until(lambda: Execution.objects.first(), timeout=20, message="the queued execution")
            callbacks.apply_callback(execution.id, callbacks.parse_callback(body), timezone.now())
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture(autouse=True)
def wait_long_enough(settings):
    settings.AGENTFIELD_SYNC_WAIT_SECONDS = 30


def test_sync_execute_answers_200_with_the_result_once_succeeded(api, committed_node):
    thread = finish_when_queued({"status": "succeeded", "result": {"answer": 42}, "duration_ms": 12})
    response = api.post("/api/v1/execute/batch.work", {"input": {"q": 1}}, format="json", headers={"X-Run-ID": "run_s"})
    thread.join(timeout=20)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"] == {"answer": 42}
    assert body["run_id"] == "run_s"
    assert body["duration_ms"] == 12
    assert body["finished_at"].endswith("Z")
    assert response["X-Execution-ID"] == body["execution_id"]
    assert response["X-Run-ID"] == "run_s"


def test_sync_execute_answers_200_with_the_error_when_the_agent_fails(api, committed_node):
    thread = finish_when_queued({"status": "failed", "error": "ValueError: boom"})
    response = api.post("/api/v1/execute/batch.work", {"input": {}}, format="json")
    thread.join(timeout=20)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["error_message"] == "ValueError: boom"
