"""Scenario 6: fan-out — one reasoner of the real `agentfield` SDK app.call's N children.

daphne, one dispatcher and the SDK agent bench/agents/fanout_agent.py; the parent is fired with
POST /api/v1/execute/async and the clock stops when it is `succeeded` (all children done).
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from pathlib import Path

import psycopg

from bench import ours, procs, s3_api
from bench.report import Row, progress

AGENT = Path(__file__).resolve().parent / "agents" / "fanout_agent.py"
NODE = "fanout"
NODE_LOST_SECONDS = 30.0
POLL_SECONDS = 0.2  # how often the bench asks whether the parent has finished
NODE_CHECK_SECONDS = 2.0  # and, while it has not, whether the agent is still alive


def _request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, data, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


def _start_agent(url: str) -> procs.Process:
    env = procs.env_for(None, AGENTFIELD_SERVER=url, PORT=procs.free_port(), NODE_ID=NODE, AGENTFIELD_STRICT_PORT="1")
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.pop("DATABASE_URL", None)
    return procs.Process("fanout-agent", [sys.executable, str(AGENT)], env)


def _node_active(port: int) -> bool:
    status, body = _request(port, "GET", f"/api/v1/nodes/{NODE}")
    return status == 200 and body.get("health_status", body.get("status")) == "active"


def _once(bench: ours.Bench, port: int, children: int) -> tuple[float, int]:
    """(seconds from POSTing the parent to its `succeeded`, child executions created)."""
    bench.reset()
    began = time.perf_counter()
    status, accepted = _request(port, "POST", f"/api/v1/execute/async/{NODE}.parent", {"input": {"n": children}})
    if status != 202:
        raise RuntimeError(f"parent not accepted: {status} {accepted}")
    path = f"/api/v1/executions/{accepted['execution_id']}"
    watch: dict[str, float] = {}  # when the agent was last checked, and first seen inactive while it stays so
    # Every 0.2 s: the bench's own polls (each a new connection, two requests) must not compete with the
    # agent for the CPU; at every 50 ms they were ~40 connections a second during the run.
    final = procs.wait_until(lambda: _terminal(port, path, watch), 1800, POLL_SECONDS, "the fan-out parent")
    if final.get("_node_lost"):
        raise RuntimeError(
            f"the SDK agent sent no heartbeat for over {NODE_LOST_SECONDS:.0f} s during the fan-out (see its log "
            "for 'degraded mode'); the parent would wait for the lost-execution grace period and fail"
        )
    elapsed = time.perf_counter() - began
    if final["status"] != "succeeded":
        raise RuntimeError(f"parent ended {final['status']}: {final.get('error')}")
    from executions.models import Execution

    return elapsed, Execution.objects.filter(target_name="child").count()


def _terminal(port: int, path: str, watch: dict[str, float]) -> dict | None:
    """The parent's body once it has ended, or a marker once its agent is no longer alive."""
    status, body = _request(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body}")
    if body["status"] in ("succeeded", "failed", "cancelled", "timeout"):
        return body
    if time.monotonic() - watch.get("checked", 0.0) < NODE_CHECK_SECONDS:
        return None
    watch["checked"] = time.monotonic()
    node_status, node = _request(port, "GET", f"/api/v1/nodes/{NODE}")
    if node_status == 200 and node.get("health_status", node.get("status")) == "active":
        watch.pop("at", None)
        return None
    # A heartbeat late by a few seconds under load is survivable (the parent is re-queued and
    # resumed on the same instance); an agent away for half a minute has given up (degraded mode).
    first = watch.setdefault("at", time.monotonic())
    return {"_node_lost": True, **body} if time.monotonic() - first > NODE_LOST_SECONDS else None


def run(ctx) -> list[Row]:
    bench = ours.Bench.start(ctx.server)
    seconds = Row("6", f"fan-out: 1 SDK reasoner app.call × {ctx.fanout:,}", "time to all done", "s")
    rate = Row("6", f"fan-out: 1 SDK reasoner app.call × {ctx.fanout:,}", "children/s", "exec/s")
    server, url = s3_api.start_server(bench, **ctx.server_env)
    port = int(url.rsplit(":", 1)[1])
    bench.start_dispatcher()
    agent = _start_agent(url)
    try:
        procs.wait_until(lambda: _node_active(port), 60, message="the SDK agent to register")
        if ctx.fanout_child_limit:  # as an agent declaring reasoner_concurrency {"child": N} would have it
            with psycopg.connect(bench.conninfo, autocommit=True) as conn:
                limit = json.dumps({"child": ctx.fanout_child_limit})
                conn.execute("UPDATE nodes_node SET target_concurrency = %s WHERE id = %s", [limit, NODE])
        created = []
        # Where the time goes: CPU seconds per child of each process (read from /proc).
        cpu = {name: Row("6", f"fan-out: 1 SDK reasoner app.call × {ctx.fanout:,}", f"{name} CPU / child", "ms")
               for name in ("server", "SDK agent", "dispatcher", "PostgreSQL")}  # fmt: skip
        for rep in range(ctx.repeat):
            before = _cpu(server, agent, bench)
            elapsed, rows = _once(bench, port, ctx.fanout)
            used = {name: spent - before[name] for name, spent in _cpu(server, agent, bench).items()}
            for name, spent in used.items():
                cpu[name].samples.append(spent * 1000 / ctx.fanout)
            created.append(rows)
            seconds.samples.append(elapsed)
            rate.samples.append(ctx.fanout / elapsed)
            progress(f"6 rep {rep + 1}/{ctx.repeat}: {ctx.fanout:,} children in {elapsed:.1f} s ({rows:,} child rows); "
                     + ", ".join(f"{name} {spent:.1f} s CPU" for name, spent in used.items()))  # fmt: skip
    finally:
        agent.stop()
        server.stop()
        bench.stop()
    seconds.note = "daphne + 1 dispatcher + 1 SDK agent; children polled by the SDK"
    rate.note = f"child execution rows created per run: {', '.join(f'{n:,}' for n in created)} (more than {ctx.fanout:,} = SDK re-submits)"
    return [seconds, rate, *cpu.values()]


def _cpu(server: procs.Process, agent: procs.Process, bench: ours.Bench) -> dict[str, float]:
    return {
        "server": procs.cpu_seconds(server.pid),
        "SDK agent": procs.cpu_seconds(agent.pid),
        "dispatcher": sum(procs.cpu_seconds(process.pid) for process in bench.dispatchers),
        "PostgreSQL": procs.postgres_cpu_seconds(bench.dbname),  # its backends only (the machine is shared)
    }
