"""Scenario 9: duplicates per dispatcher SIGKILL — work handed to an agent, then the dispatcher dies.

daphne and a dispatcher (`--concurrency 32`, 5 s agent calls, 6 s lease, 2 s lease grace) of the
checkout under test (`--code-root`) and the real SDK agent bench/agents/counting_agent.py, whose
reasoner appends its execution id to a file at every start and then sleeps 60 s. `--handoff`
executions are POSTed through the API in a burst; once a random 20–80% of them have started at
the agent, the dispatcher is SIGKILLed and a new one started. When all are terminal, the file
says how many times each execution really ran: an id started twice is a duplicate (the agent
took it, the dead dispatcher never recorded that, the next one sent it again).

A second variant uses the stub agent (answers 202, reports nothing), counting POSTs per
`X-Execution-ID` until every execution is `running`: an agent that never says it started gives
the control plane nothing to tell a lost hand-off from a delivered one.
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.plane import Plane, StubNode
from bench.report import Row, progress

AGENT = Path(__file__).resolve().parent / "agents" / "counting_agent.py"
SDK_NODE, STUB_NODE = "counting", "handoff-stub"
SECONDS = 60.0  # the reasoner's sleep: far longer than lease + grace, so a re-claim finds it still running
HANDOFF = {
    "AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS": 5,
    "AGENTFIELD_DISPATCH_LEASE_SECONDS": 6,
    "AGENTFIELD_DISPATCH_LEASE_GRACE_SECONDS": 2,  # unknown to older code: ignored there
}
TERMINAL = ("succeeded", "failed", "cancelled", "timeout")
FIRING_CLIENTS = 8


@dataclass
class Outcome:
    """One repetition: what was handed over, when the dispatcher died, and what ran."""

    ids: list[str]
    starts: Counter
    at_kill: int  # starts (or POSTs) the agent had seen when the dispatcher was killed
    exposed: int  # of those, executions whose hand-off the killed dispatcher had not recorded
    statuses: dict[str, int]
    attempts: dict[int, int]

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.starts.values() if count > 1)

    @property
    def never_started(self) -> int:
        return len(set(self.ids) - set(self.starts))

    def summary(self) -> str:
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items()))
        attempts = ", ".join(f"{a}: {n}" for a, n in sorted(self.attempts.items()))
        return (
            f"killed at {self.at_kill} seen, {self.exposed} of them unrecorded; {statuses}; attempts {attempts};"
            f" never started {self.never_started}"
        )


def _fire(plane: Plane, target: str, count: int, ids: list[str], errors: list[str]) -> None:
    """POST `count` async executions of `target` from a few keep-alive clients, as fast as answered."""

    def client(share: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", plane.port, timeout=60)
        body = json.dumps({"input": {"seconds": SECONDS}}).encode()
        for _ in range(share):
            connection.request("POST", f"/api/v1/execute/async/{target}", body, plane.headers())
            response = connection.getresponse()
            answer = response.read()
            if response.status == 202:
                ids.append(json.loads(answer)["execution_id"])
            else:
                errors.append(f"{response.status} {answer[:200]!r}")
        connection.close()

    shares = [count // FIRING_CLIENTS + (i < count % FIRING_CLIENTS) for i in range(FIRING_CLIENTS)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)


def _start_dispatcher(plane: Plane) -> procs.Process:
    """A dispatcher, returned once it has connected (its backend shows up), so the burst meets a live loop."""
    before = plane.backends()
    dispatcher = plane.start_dispatcher("--concurrency", "32", **HANDOFF)
    procs.wait_until(lambda: plane.backends() > before or not dispatcher.alive(), 30, 0.05, "the dispatcher")
    if not dispatcher.alive():
        raise RuntimeError(f"dispatcher exited:\n{dispatcher.output()}")
    return dispatcher


def _unrecorded(plane: Plane) -> set[str]:
    """Executions claimed by a dispatcher that recorded no outcome (still `queued` under a lease)."""
    query = "SELECT id FROM executions_execution WHERE status = 'queued' AND lease_token IS NOT NULL"
    return {row[0] for row in plane.sql(query)}


def _kill_midway(plane: Plane, target: str, count: int, seen: Callable[[], set[str]]) -> tuple[list[str], int, int]:
    """Fire the burst; SIGKILL the dispatcher once `seen()` passes a random 20–80% of `count`; start another.

    Returns the execution ids, how many the agent had seen at the kill, and how many of those the
    dead dispatcher had not recorded: the executions a careless re-claim would send twice.
    """
    first = _start_dispatcher(plane)
    ids: list[str] = []
    errors: list[str] = []
    firing = threading.Thread(target=_fire, args=(plane, target, count, ids, errors))
    firing.start()
    threshold = max(1, round(count * random.uniform(0.2, 0.8)))  # noqa: S311 - a moment, not a secret
    procs.wait_until(lambda: len(seen()) >= threshold or not first.alive(), 120, 0.005, f"{threshold} starts")
    first.kill()
    time.sleep(1.0)  # the agent notes the starts of POSTs it accepted just before the kill
    at_kill = seen()
    exposed = len(at_kill & _unrecorded(plane))
    progress(f"  dispatcher SIGKILLed at {len(at_kill)}/{count} seen (aimed at {threshold}); {exposed} unrecorded")
    firing.join(300)
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} POSTs refused (first: {errors[0]})")
    _start_dispatcher(plane)
    return ids, len(at_kill), exposed


def _attempts(plane: Plane, target: str) -> dict[int, int]:
    query = "SELECT attempt, count(*) FROM executions_execution WHERE target_name = %s GROUP BY attempt"
    return dict(plane.sql(query, [target]))


def _node_active(plane: Plane, node: str) -> bool:
    status, body = plane.request("GET", f"/api/v1/nodes/{node}")
    return status == 200 and body.get("health_status", body.get("status")) == "active"


def _sdk_once(ctx, count: int) -> Outcome:
    plane = Plane(ctx.server, "handoff", ctx.code_root)
    starts = Path(tempfile.mkstemp(prefix="handoff-starts-", suffix=".txt")[1])
    agent = None
    try:
        plane.start_server()
        env = procs.env_for(None, AGENTFIELD_SERVER=f"http://127.0.0.1:{plane.port}", PORT=procs.free_port())
        env |= {"NODE_ID": SDK_NODE, "STARTS_FILE": str(starts), "AGENTFIELD_STRICT_PORT": "1"}
        env |= {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        env.pop("DATABASE_URL", None)
        agent = procs.Process("counting-agent", [sys.executable, str(AGENT)], env)
        procs.wait_until(lambda: _node_active(plane, SDK_NODE), 60, 0.2, "the SDK agent to register")
        ids, at_kill, exposed = _kill_midway(
            plane, f"{SDK_NODE}.counted", count, lambda: set(starts.read_text().split())
        )
        done = lambda: sum(plane.status_counts("counted").get(s, 0) for s in TERMINAL) >= count  # noqa: E731
        procs.wait_until(done, SECONDS * 3 + 120, 0.5, "every execution to end")
        time.sleep(1.0)  # a duplicate start may land just after the first run's callback
        return Outcome(
            ids,
            Counter(starts.read_text().split()),
            at_kill,
            exposed,
            plane.status_counts("counted"),
            _attempts(plane, "counted"),
        )
    finally:
        if agent:
            agent.stop()
        plane.stop()
        starts.unlink(missing_ok=True)


def _posts_per_execution(stub: procs.StubAgent) -> Counter:
    with urllib.request.urlopen(f"{stub.url}/_stats?counts=1", timeout=10) as response:
        return Counter(json.loads(response.read())["counts"])


def _stub_once(ctx, count: int, stub: procs.StubAgent) -> Outcome:
    plane = Plane(ctx.server, "handoff", ctx.code_root)
    node = None
    try:
        plane.start_server()
        node = StubNode(plane, STUB_NODE, stub.url, ["counted"])
        stub.reset()
        ids, at_kill, exposed = _kill_midway(
            plane, f"{STUB_NODE}.counted", count, lambda: set(_posts_per_execution(stub))
        )
        running = lambda: plane.status_counts("counted").get("running", 0) >= count  # noqa: E731
        procs.wait_until(running, 120, 0.5, "every execution to be running")
        posts = _posts_per_execution(stub)
        return Outcome(ids, posts, at_kill, exposed, plane.status_counts("counted"), _attempts(plane, "counted"))
    finally:
        if node:
            node.stop()
        plane.stop()


def _rows(case: str, outcomes: list[Outcome], count: int) -> list[Row]:
    details = " | ".join(outcome.summary() for outcome in outcomes)
    return [
        Row("9", case, "duplicated executions per kill", "", [o.duplicates for o in outcomes], note=details),
        Row("9", case, "starts (POSTs) in all", "", [sum(o.starts.values()) for o in outcomes], note=f"of {count}"),
        Row("9", case, "seen by the agent, unrecorded at the kill", "", [o.exposed for o in outcomes]),
    ]


def run(ctx) -> list[Row]:
    count = ctx.handoff
    sdk: list[Outcome] = []
    stubbed: list[Outcome] = []
    for rep in range(ctx.repeat):
        sdk.append(_sdk_once(ctx, count))
        progress(f"9 rep {rep + 1}/{ctx.repeat} SDK: {sdk[-1].duplicates} duplicates; {sdk[-1].summary()}")
    stub = procs.StubAgent(202)
    try:
        for rep in range(ctx.repeat):
            stubbed.append(_stub_once(ctx, count, stub))
            progress(f"9 rep {rep + 1}/{ctx.repeat} stub: {stubbed[-1].duplicates} re-POSTed; {stubbed[-1].summary()}")
    finally:
        stub.stop()
    return _rows(f"SDK agent, {count} × 60 s, SIGKILL at 20–80% of starts", sdk, count) + _rows(
        f"stub agent answering 202, {count} executions, SIGKILL at 20–80% of POSTs", stubbed, count
    )
