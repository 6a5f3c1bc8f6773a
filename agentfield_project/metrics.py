"""What a dispatcher process counts, for Prometheus (`run_dispatcher --metrics-port P` serves it).

Counters and histograms live in the process that does the work, in prometheus_client's default
registry; the server's `/metrics` (executions/metrics.py) reads the shared state from PostgreSQL.
"""

from __future__ import annotations

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
IN_FLIGHT = Gauge("agentfield_dispatcher_in_flight", "Agent calls this dispatcher has in flight")


def call_outcome(status_code: int | None) -> str:
    if status_code is None:
        return "error"
    if status_code == 202:
        return "accepted"
    return "ok" if 200 <= status_code < 300 else f"{status_code // 100}xx"
