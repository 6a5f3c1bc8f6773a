"""Scenario 11: server CPU per request on the routes the SDK calls most.

One daphne (`manage.py serve`, one process) of the checkout under test (`--code-root`) and no
dispatcher, so the server and PostgreSQL are the only busy processes. A node is registered as the
SDK registers it. Each route is requested `--route-requests` times, one after the other on one
keep-alive connection, with the SDK's headers and bodies (reference/sdk-client.md); the server's
CPU seconds (read from /proc; its event-loop thread's apart) and PostgreSQL's, divided by the
number of requests, are the cost of one request, reported with the median and p99 latency. The
status callbacks finish executions the execute step created (marked `running` with plain SQL
first, as a dispatcher would have). The event hub runs from the start, as under any SDK workload,
so it sees those executions end.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import procs
from bench.plane import Plane
from bench.report import Row, percentile, progress

NODE = "routes"
SDK = "AgentField-SDK-AsyncClient/1.0"


@dataclass
class Cost:
    server_ms: float  # server CPU per request
    loop_ms: float  # of which its event-loop thread's: Twisted, daphne, the ASGI glue, the hub's listener
    postgres_ms: float
    p50_ms: float
    p99_ms: float
    statuses: set[int]


def measure(plane: Plane, count: int, request: Callable[[int], tuple[str, str, dict | None, dict]]) -> Cost:
    """Send `request(i)` for i in range(count) on one keep-alive connection; CPU per request."""
    connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=60)
    latencies, statuses = [], set()
    pid = plane.server.pid
    cpu, loop_cpu, pg_cpu = (
        procs.cpu_seconds(pid),
        procs.cpu_seconds(pid, pid),
        procs.postgres_cpu_seconds(plane.dbname),
    )
    for index in range(count):
        method, path, body, headers = request(index)
        began = time.perf_counter()
        connection.request(method, path, None if body is None else json.dumps(body).encode(), plane.headers() | headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - began) * 1000)
        statuses.add(response.status)
    cpu, loop_cpu = procs.cpu_seconds(pid) - cpu, procs.cpu_seconds(pid, pid) - loop_cpu
    pg_cpu = procs.postgres_cpu_seconds(plane.dbname) - pg_cpu
    connection.close()
    per = lambda seconds: seconds * 1000 / count  # noqa: E731
    return Cost(per(cpu), per(loop_cpu), per(pg_cpu), percentile(latencies, 50), percentile(latencies, 99), statuses)


def _register(plane: Plane) -> None:
    body = {
        "id": NODE,
        "base_url": "http://127.0.0.1:9",
        "reasoners": [{"id": "work", "input_schema": {}, "output_schema": {}, "tags": []}],
        "skills": [],
        "instance_id": "routes-1",
        "version": "1.0.0",
    }
    status, answer = plane.request("POST", "/api/v1/nodes/register", body)
    if status >= 300:
        raise RuntimeError(f"register answered {status}: {answer}")


def _routes(plane: Plane, ids: list[str]) -> dict[str, Callable[[int], tuple[str, str, dict | None, dict]]]:
    run = "run_routes_1"
    context = {"X-Run-ID": run, "X-Workflow-ID": run, "X-Execution-ID": ids[0], "User-Agent": SDK}
    log = {"ts": "2026-11-23T01:37:25.447Z", "level": "info", "message": "processed 1/5", "event_type": "log.info"}
    step = {"workflow_id": run, "run_id": run, "reasoner_id": "work", "agent_node_id": NODE, "status": "running"}
    return {
        "execute (app.call)": lambda i: ("POST", f"/api/v1/execute/async/{NODE}.work", {"input": {"i": i}}, context),
        "status poll (finished)": lambda i: ("GET", f"/api/v1/executions/{ids[i]}", None, {"User-Agent": SDK}),
        "status callback (terminal)": lambda i: (
            "POST", f"/api/v1/executions/{ids[i]}/status", {"status": "succeeded", "result": {"i": i}}, {},
        ),
        "logs": lambda i: ("POST", f"/api/v1/executions/{ids[i]}/logs", {"entries": [log | {"execution_id": ids[i]}]}, {}),
        "step event": lambda i: ("POST", "/api/v1/workflow/executions/events", step | {"execution_id": ids[i]}, {}),
        "heartbeat": lambda i: ("POST", f"/api/v1/nodes/{NODE}/heartbeat", {"status": "ready"}, {}),
        "memory set": lambda i: ("POST", "/api/v1/memory/set", {"key": f"k{i % 50}", "data": {"i": i}}, context),
        "memory get": lambda i: ("POST", "/api/v1/memory/get", {"key": f"k{i % 50}"}, context),
    }  # fmt: skip


def run(ctx) -> list[Row]:
    count = ctx.route_requests
    samples: dict[str, list[Cost]] = {}
    for attempt in range(ctx.repeat):
        progress(f"  run {attempt + 1}/{ctx.repeat}: {count} requests per route")
        plane = Plane(ctx.server, "routes", ctx.code_root)
        try:
            plane.start_server()
            _register(plane)
            _start_event_hub(plane)
            # An app.call names its running parent (X-Execution-ID): submit one first, as its parent.
            status, parent = plane.request("POST", f"/api/v1/execute/async/{NODE}.work", {"input": {}})
            if status != 202:
                raise RuntimeError(f"the parent's submit answered {status}: {parent}")
            execute = measure(plane, count, _routes(plane, [parent["execution_id"]])["execute (app.call)"])
            ids = [row[0] for row in plane.sql("SELECT id FROM executions_execution ORDER BY created_at, id")]
            plane.sql(
                "UPDATE executions_execution SET status = 'running', started_at = now(), attempt = 1,"
                " node_instance_id = 'routes-1' RETURNING id"
            )  # as a dispatcher's hand-off would leave them
            costs = {"execute (app.call)": execute}
            for name, request in list(_routes(plane, ids).items())[1:]:
                if name == "status poll (finished)":
                    continue  # measured after the callbacks, when every execution is finished
                costs[name] = measure(plane, count, request)
            costs["status poll (finished)"] = measure(plane, count, _routes(plane, ids)["status poll (finished)"])
        finally:
            plane.stop()
        for name, cost in costs.items():
            samples.setdefault(name, []).append(cost)
    return _rows(samples, count, ctx)


def _start_event_hub(plane: Plane) -> None:
    """Start the server's event hub (an SDK's first status poll does), as it runs during any SDK workload.

    Without it the hub would start at the first measured poll and never have seen the executions end,
    so each poll would pay a read (and a thread hop) that a running server answers from the hub.
    """
    connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=30)
    connection.request("GET", "/api/v1/executions/exec_none", None, plane.headers() | {"User-Agent": SDK})
    connection.getresponse().read()
    connection.close()
    deadline = time.monotonic() + 30
    while plane.request("GET", "/api/ui/v1/executions/events/stats")[1].get("last_event_id") is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the server's event hub did not start within 30 s")
        time.sleep(0.1)


def _rows(samples: dict[str, list[Cost]], count: int, ctx) -> list[Row]:
    rows = []
    for name, costs in samples.items():
        statuses = sorted(set().union(*(cost.statuses for cost in costs)))
        note = f"{count} sequential requests; HTTP {statuses}"
        rows += [
            Row("11", name, "server CPU / request", "ms", [cost.server_ms for cost in costs], note),
            Row("11", name, "of which the event loop", "ms", [cost.loop_ms for cost in costs]),
            Row("11", name, "PostgreSQL CPU / request", "ms", [cost.postgres_ms for cost in costs]),
            Row("11", name, "latency p50", "ms", [cost.p50_ms for cost in costs]),
            Row("11", name, "latency p99", "ms", [cost.p99_ms for cost in costs]),
        ]
    return rows
