"""Scenario 5: scale — claim cost against a big history or a big backlog, and dispatcher memory.

Claim cost: `executions.queue.claim` (limit 10, own transaction) called from this process with
10k vs many finished rows in the table, and with a large queued backlog; p50/p99 per claim.
Memory: RSS of one `run_dispatcher` process after N executions (same process, growing N).
"""

from __future__ import annotations

import time
import traceback
import uuid
from datetime import UTC, datetime

import psycopg

from bench import ours, procs
from bench.report import Row, percentile, progress

CLAIMS_PER_RUN = 100
CLAIM_LIMIT = 10


def _fill(bench: ours.Bench, count: int, status: str, prefix: str) -> None:
    """Copy one template row `count` times with fresh ids (fast: one INSERT ... SELECT)."""
    from executions.models import Execution

    now = datetime.now(UTC)
    template = f"tmpl-{uuid.uuid4().hex[:8]}"
    Execution.objects.create(
        id=template,
        run_id=template,
        node_id=ours.NODE_ID,
        target_name=ours.REASONER,
        input={},
        status=status,
        run_at=now,
        created_at=now,
        updated_at=now,
        completed_at=now if status != "queued" else None,
    )
    columns = [field.column for field in Execution._meta.concrete_fields]
    generated = {"id": f"'{prefix}_' || g", "run_id": f"'run_{prefix}_' || g", "idempotency_key": "NULL"}
    select = ", ".join(generated.get(column, f"t.{column}") for column in columns)
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO executions_execution ({', '.join(columns)}) SELECT {select}"  # noqa: S608 - our own column names
            f" FROM executions_execution t, generate_series(1, {int(count)}) g WHERE t.id = %s",
            [template],
        )
        conn.execute("DELETE FROM executions_execution WHERE id = %s", [template])


def _claim_times(count: int) -> list[float]:
    from executions import queue

    times = []
    for _ in range(count):
        began = time.perf_counter()
        claimed = queue.claim("bench", datetime.now(UTC), CLAIM_LIMIT, lease_seconds=600, alive_seconds=30)
        times.append((time.perf_counter() - began) * 1000)
        if len(claimed) != CLAIM_LIMIT:
            raise RuntimeError(f"claim returned {len(claimed)} rows, expected {CLAIM_LIMIT}")
    return times


def _claim_cell(ctx, bench: ours.Bench, finished: int, queued: int) -> list[Row]:
    label = f"claim 10, {finished:,} finished + {queued:,} queued rows"
    p50, p99 = Row("5", label, "p50 per claim", "ms"), Row("5", label, "p99 per claim", "ms")
    bench.reset()
    _fill(bench, finished, "succeeded", "done")
    _fill(bench, max(queued, CLAIMS_PER_RUN * CLAIM_LIMIT * ctx.repeat), "queued", "due")
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE executions_execution")
    for rep in range(ctx.repeat):
        times = _claim_times(CLAIMS_PER_RUN)
        p50.samples.append(percentile(times, 50))
        p99.samples.append(percentile(times, 99))
        progress(f"5 {label}: rep {rep + 1}/{ctx.repeat} p50 {p50.samples[-1]:.2f} ms, p99 {p99.samples[-1]:.2f} ms")
    p50.note = p99.note = f"{CLAIMS_PER_RUN} claims per run, from this process via executions.queue.claim"
    return [p50, p99]


def _rss(ctx, bench: ours.Bench) -> list[Row]:
    """RSS of one dispatcher after each count in ctx.rss_counts (cumulative, same process)."""
    bench.reset()
    dispatcher = bench.start_dispatcher()
    rows, done = [], 0
    try:
        for target in sorted(ctx.rss_counts):
            bench.enqueue(target - done, batch=5000)
            procs.watch([dispatcher], bench.count, target, f"rss run to {target:,}", timeout=7200)
            done = target
            time.sleep(1.0)
            rss = dispatcher.rss_kib() / 1024
            progress(f"5 dispatcher RSS after {target:,} executions: {rss:.1f} MiB")
            rows.append(
                Row(
                    "5",
                    f"dispatcher RSS after {target:,} executions",
                    "VmRSS",
                    "MiB",
                    [rss],
                    note="one process, one run",
                )
            )
    finally:
        dispatcher.stop()
        bench.dispatchers.remove(dispatcher)
    return rows


def run(ctx) -> list[Row]:
    bench = ours.Bench.start(ctx.server)
    rows = []
    try:
        small = CLAIMS_PER_RUN * CLAIM_LIMIT * ctx.repeat
        for finished in ctx.scale_finished:
            rows += _claim_cell(ctx, bench, finished, small)
        rows += _claim_cell(ctx, bench, min(ctx.scale_finished), ctx.scale_queued)
        try:
            rows += _rss(ctx, bench)
        except Exception as error:  # keep the claim numbers if the long memory run breaks
            traceback.print_exc()
            rows.append(
                Row("5", "dispatcher RSS", "VmRSS", "MiB", unavailable=f"failed: {type(error).__name__}: {error}"[:300])
            )
    finally:
        bench.stop()
    return rows
