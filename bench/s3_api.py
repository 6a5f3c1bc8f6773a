"""Scenario 3: through the API — POST /api/v1/execute/async/{node}.{name} to `succeeded`.

`manage.py serve --processes N` (N daphne processes on one socket, as users deploy it;
`--server-processes`) and one dispatcher on the same database; C client threads, each with one
keep-alive connection, POST as fast as they get answers (closed loop). Reported: executions/s
from the first POST to the last completion, the rate of accepted POSTs, and POST latency.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time

from bench import ours, procs
from bench.report import Row, percentile, progress


def start_server(bench: ours.Bench, processes: int = 1, **settings: str) -> tuple[procs.Process, str]:
    """`manage.py serve` on a free loopback port against the bench database; returns it once healthy."""
    port = procs.free_port()
    args = [sys.executable, "manage.py", "serve", "--port", str(port), "--processes", str(processes)]
    server = procs.Process("serve", args, procs.env_for(bench.url, **settings))
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not server.alive():
            raise RuntimeError(f"serve exited:\n{server.output()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/v1/health")
            return connection.getresponse().status == 200
        except OSError:
            return False

    procs.wait_until(healthy, 30, message="serve to answer /api/v1/health")
    return server, url


def _client(port: int, count: int, latencies: list[float], errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"input": {}}).encode()
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        began = time.perf_counter()
        connection.request("POST", f"/api/v1/execute/async/{ours.NODE_ID}.{ours.REASONER}", body, headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - began) * 1000)
        if response.status != 202:
            errors.append(str(response.status))


def _once(bench: ours.Bench, port: int, total: int, clients: int) -> tuple[float, float, list[float]]:
    """(executions/s POST→succeeded, accepted POSTs/s, POST latencies in ms) for one run."""
    bench.reset()
    latencies: list[float] = []
    errors: list[str] = []
    per_client = total // clients
    threads = [threading.Thread(target=_client, args=(port, per_client, latencies, errors)) for _ in range(clients)]
    began, began_wall = time.perf_counter(), time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    posted = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} POSTs were not answered 202 (first: {errors[0]})")
    expected = per_client * clients
    procs.watch(bench.dispatchers, bench.count, expected, "api executions")
    if bench.count() != expected:
        raise RuntimeError(f"only {bench.count()} of {expected} executions succeeded")
    return expected / (bench.last_completion() - began_wall), expected / posted, latencies


def run(ctx) -> list[Row]:
    bench = ours.Bench.start(ctx.server)
    daphnes = f"{ctx.server_processes} daphne" + ("s" if ctx.server_processes > 1 else "")
    note = f"{ctx.api_executions:,} executions, {ctx.api_clients} clients, {daphnes}, 1 dispatcher"
    rows = [
        Row("3", "API → succeeded", "executions/s", "exec/s", note=note),
        Row("3", "API POST accepted", "POSTs/s", "req/s", note="202s per second while posting"),
        Row("3", "API POST latency", "p50", "ms"),
        Row("3", "API POST latency", "p99", "ms"),
    ]
    server, url = start_server(bench, ctx.server_processes, **ctx.server_env)
    bench.start_dispatcher()
    try:
        for rep in range(ctx.repeat):
            rate, post_rate, latencies = _once(bench, int(url.rsplit(":", 1)[1]), ctx.api_executions, ctx.api_clients)
            for row, value in zip(
                rows, [rate, post_rate, percentile(latencies, 50), percentile(latencies, 99)], strict=True
            ):
                row.samples.append(value)
            progress(
                f"3 rep {rep + 1}/{ctx.repeat}: {rate:,.0f} exec/s, {post_rate:,.0f} POST/s, p50 {rows[2].samples[-1]:.1f} ms"
            )
    finally:
        server.stop()
        bench.stop()
    return rows
