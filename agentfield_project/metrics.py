"""What a process counts, for Prometheus: dispatches, agent calls, outcomes, finished executions.

Counters and histograms live in the process that does the work, in prometheus_client's default
registry: a dispatcher serves them with `run_dispatcher --metrics-port P`, a server process
appends them to its `/metrics` (executions/metrics.py), after the shared state it reads from
PostgreSQL. Executions finish in both: the agent's callback reaches a server, an inline answer or
a give-up is recorded by a dispatcher; scrape every process and sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

DISPATCHES = Counter("agentfield_dispatches", "Executions handed to an agent, by target", ["target"])
DISPATCH_LATENCY = Histogram(
    "agentfield_dispatch_latency_seconds",
    "From due (run_at) to the hand-off to an agent, first attempts only",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
AGENT_CALLS = Histogram(
    "agentfield_agent_call_seconds",
    "Duration of the dispatch POST to an agent, by outcome",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTCOMES = Counter("agentfield_dispatch_outcomes", "Recorded dispatch outcomes (running, succeeded, ...)", ["outcome"])
WEBHOOK_ATTEMPTS = Counter("agentfield_webhook_attempts", "Webhook delivery attempts, by decision", ["outcome"])
FINISHED = Counter(
    "agentfield_executions_finished",
    "Executions that reached a terminal status, by target and status",
    ["target", "status"],
)
EXECUTION_DURATION = Histogram(
    "agentfield_execution_duration_seconds",
    "From the first start to the terminal status (duration_ms), by target",
    ["target"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
IN_FLIGHT = Gauge("agentfield_dispatcher_in_flight", "Agent calls this dispatcher has in flight")


def call_outcome(status_code: int | None) -> str:
    if status_code is None:
        return "error"
    if status_code == 202:
        return "accepted"
    return "ok" if 200 <= status_code < 300 else f"{status_code // 100}xx"


def observe_finished(executions: Iterable[Any]) -> None:
    """Count executions that just finished (call after their transaction committed)."""
    for execution in executions:
        FINISHED.labels(execution.target, execution.status).inc()
        if execution.duration_ms is not None:
            EXECUTION_DURATION.labels(execution.target).observe(execution.duration_ms / 1000)
