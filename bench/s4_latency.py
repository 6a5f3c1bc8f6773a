"""Scenario 4: enqueue-to-dispatch latency with an idle dispatcher (LISTEN, and polling only).

One execution at a time is submitted through `executions.services.submit` (the API's own path:
row, 'queued' event and NOTIFY in one transaction); the clock starts when that commit returns and
stops when the stub agent receives the POST carrying its X-Execution-ID. Sequential: the
dispatcher is idle (asleep on LISTEN) before every sample.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from bench import ours, procs
from bench.report import Row, percentile, progress


def _submit() -> str:
    from executions import services

    sub = services.build_submission(f"{ours.NODE_ID}.{ours.REASONER}", {"input": {}}, {})
    execution, _, _ = services.submit(sub, datetime.now(UTC))
    return execution.id


def _samples(bench: ours.Bench, count: int, max_gap: float) -> list[float]:
    """Latencies in ms of `count` sequential submissions, each waited for at the stub."""
    bench.reset()
    committed: dict[str, float] = {}
    for index in range(count):
        execution_id = _submit()
        committed[execution_id] = time.time()
        procs.wait_until(
            lambda n=index + 1: bench.stub.stats()["count"] >= n, 30, 0.002, "the stub to receive the dispatch"
        )
        # Only measure an idle dispatcher: wait until it has recorded the outcome, then let it sleep.
        procs.wait_until(lambda n=index + 1: bench.count() >= n, 30, 0.005, "the dispatcher to record the outcome")
        time.sleep(random.uniform(0.1, max_gap))  # a random phase against the poll interval
    received = bench.stub.stats(times=True)["times"]
    return [(received[key] - committed[key]) * 1000 for key in committed]


def _measure(ctx, bench: ours.Bench, label: str, count: int, max_gap: float, *args: str) -> list[Row]:
    p50 = Row("4", label, "p50 commit→agent", "ms", note=f"{count} sequential samples per run")
    p99 = Row("4", label, "p99 commit→agent", "ms", note=f"{count} sequential samples per run")
    dispatcher = bench.start_dispatcher(*args)
    try:
        procs.wait_until(lambda: "started" in dispatcher.output(), 30, message="the dispatcher to start")
        time.sleep(1.0)
        for rep in range(ctx.repeat):
            values = _samples(bench, count, max_gap)
            p50.samples.append(percentile(values, 50))
            p99.samples.append(percentile(values, 99))
            progress(
                f"4 {label}: rep {rep + 1}/{ctx.repeat} p50 {p50.samples[-1]:.1f} ms, p99 {p99.samples[-1]:.1f} ms"
            )
    finally:
        dispatcher.stop()
        bench.dispatchers.remove(dispatcher)
    return [p50, p99]


def run(ctx) -> list[Row]:
    bench = ours.Bench.start(ctx.server)
    try:
        rows = _measure(ctx, bench, "idle dispatcher, LISTEN", ctx.latency_samples, 0.3)
        poll = max(10, ctx.latency_samples // 10)
        rows += _measure(ctx, bench, "idle dispatcher, --no-listen (poll 1 s)", poll, 1.1, "--no-listen")
    finally:
        bench.stop()
    return rows
