"""Scenario 8: what waiting costs the server — held synchronous executes and open event streams.

One daphne (`manage.py serve`) and one dispatcher of the checkout under test (`--code-root`), a
node whose agent is the stub answering 202 and never calling back (so executions stay
`running`), and an API key sent on every request. Three states are measured, each on a freshly
started server: nothing open; (a) `--waiters` clients blocked in `POST /api/v1/execute/{node}.work`
with every execution `running`; (b) `--streams` open `GET /api/ui/v1/executions/events` that
have read their `connected` frame. In each: daphne's OS threads and RSS, the client backends of
the scratch database, sequential `GET /api/v1/executions/{id}` latency, and the latency of a few
health checks and async executes (each on a new connection, as an agent or client would). (a) ends by completing every execution through its callback: every waiter
must then get its 200.
"""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import crowd, procs
from bench.plane import Plane, StubNode
from bench.report import Row, percentile, progress

NODE = "waiting"
WAIT_SECONDS = 300  # the server's sync wait: far longer than the measurement
GET_SAMPLES = 500
OTHER_SAMPLES = 20  # health checks and async executes per state
GET_BUDGET_SECONDS = 60.0  # an overloaded server gets this long for its GETs, however many that is
STREAMS_PATH = "/api/ui/v1/executions/events"


@dataclass
class Gauges:
    """One state of the server, measured once."""

    threads: int
    rss_mib: float
    backends: int
    server_connections: int  # of `backends`, those opened by daphne
    latencies: list[float]
    get_outcomes: list[int | str]
    health: list[tuple[float, int | str]]
    async_post: list[tuple[float, int | str]]
    extra: dict[str, str] = field(default_factory=dict)


def _timed(plane: Plane, method: str, path: str, body: dict | None = None) -> tuple[float, int | str]:
    """(milliseconds, HTTP status or error name) of one request on a fresh connection."""
    began = time.perf_counter()
    try:
        status = plane.request(method, path, body, timeout=30)[0]
    except (OSError, http.client.HTTPException) as error:
        status = type(error).__name__
    return (time.perf_counter() - began) * 1000, status


def _get_latencies(plane: Plane, path: str) -> tuple[list[float], list[int | str]]:
    """Sequential GETs on one keep-alive connection (reopened after an error), within a time budget."""
    latencies: list[float] = []
    outcomes: list[int | str] = []
    connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=30)
    deadline = time.monotonic() + GET_BUDGET_SECONDS
    while len(latencies) < GET_SAMPLES and time.monotonic() < deadline:
        began = time.perf_counter()
        try:
            connection.request("GET", path, headers=plane.headers())
            response = connection.getresponse()
            response.read()
            outcomes.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            outcomes.append(type(error).__name__)
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=30)
        latencies.append((time.perf_counter() - began) * 1000)
    connection.close()
    return latencies, outcomes


def _measure(plane: Plane, probe_id: str) -> Gauges:
    latencies, outcomes = _get_latencies(plane, f"/api/v1/executions/{probe_id}")
    return Gauges(
        threads=plane.threads(),
        rss_mib=plane.rss_mib(),
        backends=plane.backends(),
        server_connections=plane.server_pg_connections(),
        latencies=latencies,
        get_outcomes=outcomes,
        health=[_timed(plane, "GET", "/api/v1/health") for _ in range(OTHER_SAMPLES)],
        async_post=[
            _timed(plane, "POST", f"/api/v1/execute/async/{NODE}.probe", {"input": {}}) for _ in range(OTHER_SAMPLES)
        ],
    )


def _running(plane: Plane, target: str) -> int:
    return plane.status_counts(target).get("running", 0)


def _hold_waiters(plane: Plane, waiters: int) -> Gauges:
    """(a): hold `waiters` sync executes until all run, measure, then complete them all."""
    room = crowd.Crowd(plane.port, plane.headers())
    began = time.monotonic()
    pending = room.send("POST", f"/api/v1/execute/{NODE}.work", {"input": {}}, waiters, WAIT_SECONDS + 60)
    # Wait until each waiter's execution is `running` or its request has ended: a server that
    # cannot hold them all (old code: a pooled connection per waiter) answers some with errors.
    deadline = time.monotonic() + 180
    while _running(plane, "work") + room.answered < waiters and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # let threads and connections settle into their waiting state
    running, ended = _running(plane, "work"), room.answered
    progress(f"  (a) {running} running, {ended} requests ended, after {time.monotonic() - began:.1f} s")
    gauges = _measure(plane, _probe(plane))
    gauges.extra["running"] = f"when measured {running} of {waiters} running and {ended} requests already ended"
    ids = [row[0] for row in plane.sql("SELECT id FROM executions_execution WHERE target_name = 'work'")]
    body = {"status": "succeeded", "result": {}}
    with ThreadPoolExecutor(8) as pool:
        callbacks = list(pool.map(lambda i: _timed(plane, "POST", f"/api/v1/executions/{i}/status", body)[1], ids))
    answered = pending.result(WAIT_SECONDS + 120)
    room.close()
    gauges.extra["answered"] = str(answered.count(200))
    gauges.extra["answers"] = f"waiters: {crowd.tally(answered)}"
    gauges.extra["callbacks"] = f"callbacks: {crowd.tally(callbacks)}"
    progress(f"  (a) waiters got: {crowd.tally(answered)}; callbacks: {crowd.tally(callbacks)}")
    return gauges


def _open_streams(plane: Plane, streams: int) -> Gauges:
    """(b): open `streams` event streams, read each one's `connected` frame, measure, close them."""
    room = crowd.Crowd(plane.port, plane.headers())
    began = time.monotonic()
    outcomes = room.open_streams(STREAMS_PATH, streams, timeout=180)
    opened = time.monotonic() - began
    progress(f"  (b) streams: {crowd.tally(outcomes)} in {opened:.1f} s")
    time.sleep(2.0)
    try:
        gauges = _measure(plane, _probe(plane))
    finally:
        room.close()
    gauges.extra["answered"] = str(outcomes.count(200))
    gauges.extra["answers"] = f"streams: {crowd.tally(outcomes)}, all opened in {opened:.1f} s"
    return gauges


def _probe(plane: Plane) -> str:
    """The execution whose status the GETs read: the oldest `probe` (async, kept `running` by the stub)."""
    query = "SELECT id FROM executions_execution WHERE target_name = 'probe' ORDER BY created_at LIMIT 1"
    return plane.sql(query)[0][0]


def _once(ctx, stub: procs.StubAgent) -> dict[str, Gauges]:
    """The three states on one scratch database, each measured on a freshly started server."""
    plane = Plane(ctx.server, "waiting", ctx.code_root)
    node = None
    try:
        plane.create_api_key()
        plane.start_server(AGENTFIELD_SYNC_WAIT_SECONDS=WAIT_SECONDS, AGENTFIELD_MAX_STREAMS_PER_KEY=ctx.streams + 10)
        plane.start_dispatcher()
        node = StubNode(plane, NODE, stub.url, ["work", "probe"])
        status, accepted = plane.request("POST", f"/api/v1/execute/async/{NODE}.probe", {"input": {}})
        if status != 202:
            raise RuntimeError(f"probe execution not accepted: {status} {accepted}")
        procs.wait_until(lambda: _running(plane, "probe"), 30, message="the probe execution to run")
        states = {"baseline": _measure(plane, _probe(plane))}
        states["waiters"] = _hold_waiters(plane, ctx.waiters)
        _restart_server(plane, ctx.streams)
        states["streams"] = _open_streams(plane, ctx.streams)
        # Two or so fail while the server restarts between (a) and (b); more mean it was too busy.
        states["streams"].extra["heartbeats"] = f"{node.failed_beats} stub-node heartbeats failed in the run"
        return states
    finally:
        if node:
            node.stop()
        plane.stop()


def _restart_server(plane: Plane, streams: int) -> None:
    # A fresh daphne for (b): threads and memory left over from (a) would be counted as (b)'s.
    plane.server.stop()
    # The bench's one key holds every stream: lift the per-key cap (nodes/throttling.py) above them.
    plane.start_server(AGENTFIELD_SYNC_WAIT_SECONDS=WAIT_SECONDS, AGENTFIELD_MAX_STREAMS_PER_KEY=streams + 10)


METRICS = [
    ("daphne OS threads", "", lambda g: g.threads),
    ("daphne RSS", "MiB", lambda g: g.rss_mib),
    ("PostgreSQL backends of the DB", "", lambda g: g.backends),
    ("GET /executions/{id} p50", "ms", lambda g: percentile(g.latencies, 50)),
    ("GET /executions/{id} p99", "ms", lambda g: percentile(g.latencies, 99)),
    ("GET /health p50", "ms", lambda g: percentile([ms for ms, _ in g.health], 50)),
    ("POST /execute/async p50", "ms", lambda g: percentile([ms for ms, _ in g.async_post], 50)),
]


def _notes(metric: str, runs: list[Gauges]) -> str:
    """What a row's number cannot say: answers that were not 200/202, daphne's share of the backends."""
    if metric.startswith("PostgreSQL"):
        return "daphne's own: " + ", ".join(str(g.server_connections) for g in runs)
    if metric.startswith("GET /executions"):
        return "answers: " + "; ".join(f"{crowd.tally(g.get_outcomes)}" for g in runs)
    if metric.startswith(("GET /health", "POST /execute/async")):
        timed = [g.health if metric.startswith("GET") else g.async_post for g in runs]
        slowest = ", ".join(f"{max(ms for ms, _ in samples):,.0f}" for samples in timed)
        return f"{OTHER_SAMPLES} per run, max ms: {slowest}; answers: " + crowd.tally([o for t in timed for _, o in t])
    return ""


def run(ctx) -> list[Row]:
    cases = {
        "baseline": "nothing open",
        "waiters": f"(a) {ctx.waiters} sync executes waiting",
        "streams": f"(b) {ctx.streams:,} event streams open",
    }
    stub = procs.StubAgent(202)
    runs: list[dict[str, Gauges]] = []
    try:
        for rep in range(ctx.repeat):
            runs.append(_once(ctx, stub))
            stub.reset()
            waiting = runs[-1]["waiters"]
            progress(f"8 rep {rep + 1}/{ctx.repeat}: threads {waiting.threads}, backends {waiting.backends} (a)")
    finally:
        stub.stop()
    rows = []
    for key, case in cases.items():
        states = [states[key] for states in runs]
        for metric, unit, value in METRICS:
            rows.append(Row("8", case, metric, unit, [value(g) for g in states], note=_notes(metric, states)))
        if key != "baseline":
            what = "waiters answered 200" if key == "waiters" else "streams connected"
            details = "; ".join(" / ".join(v for k, v in g.extra.items() if k != "answered") for g in states)
            rows.append(Row("8", case, what, "", [float(g.extra["answered"]) for g in states], note=details))
    return rows
