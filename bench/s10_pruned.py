"""Scenario 10: retention — the claim and the console with N pruned rows behind them.

Four phases on one scratch database. Baseline: a live backlog alone (2,000 queued executions of
a live node, and one finished execution to look at). Then N finished executions older than the
retention age, each with 2 events and 2 trace entries, vacuumed and analyzed as a table that has
held them for a while would be. Then right after `retention.prune_batch` removed them all, batch
by batch: their dead tuples are still there (autovacuum lags behind a prune; it is off on the
bench machine). Last, after `VACUUM (ANALYZE)` of the tables.

Each phase measures, from this process: `queue.claim` of 32 (each claim's rows are given back
unleased, so every claim sees the same backlog), the console's pages through django.test.Client
as a staff user (the executions list, the list filtered by a status that only old rows had, one
execution's page, the overview, GET /metrics), and the tables' sizes. The prune is timed too.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench import ours
from bench.report import Row, percentile, progress

BACKLOG = 2_000
CLAIMS, CLAIM_LIMIT, WARM_UP = 200, 32, 20
PAGE_WARM_UP = 2  # untimed requests first: the first one compiles the templates
CHUNK = 250_000  # old executions per INSERT ... SELECT (a progress line each)
DETAIL = "live_detail"
PAGES = (  # (name, path, requests per run)
    ("executions list", "/dashboard/", 50),
    ("list ?status=failed", "/dashboard/?status=failed", 50),
    ("one execution", f"/dashboard/executions/{DETAIL}/", 50),
    ("overview", "/dashboard/queue/", 5),  # a few: it scans the whole table (see bench/README.md)
    ("GET /metrics", "/metrics", 50),
)
TABLES = {"executions": "executions_execution", "events": "executions_executionevent", "trace": "executions_traceentry"}
LIVE_EVENT_IDS = 10**12  # the live execution's events come after every old one, as they would
OLD_SPAN = timedelta(days=30)  # old rows were created over this span, ending 31 days ago


def _copies(conn: psycopg.Connection, template: str, first: int, last: int, generated: dict[str, str]) -> None:
    """INSERT copies g = first..last of one template row, with `generated` column expressions."""
    from executions.models import Execution

    columns = [field.column for field in Execution._meta.concrete_fields]
    select = ", ".join(generated.get(column, f"t.{column}") for column in columns)
    conn.execute(
        f"INSERT INTO executions_execution ({', '.join(columns)}) SELECT {select}"  # noqa: S608 - our own column names
        f" FROM executions_execution t, generate_series({int(first)}, {int(last)}) g WHERE t.id = %s",
        [template],
    )


def _template(name: str, status: str, created: datetime) -> str:
    from executions.models import Execution

    finished = status != "queued"
    Execution.objects.create(
        id=name, run_id=name, node_id=ours.NODE_ID, target_name=ours.REASONER, status=status,
        input={"items": ["doc one", "doc two"]}, result={"summary": "two documents"} if finished else None,
        run_at=created, created_at=created, updated_at=created, started_at=created if finished else None,
        completed_at=created if finished else None, duration_ms=2000 if finished else None,
    )  # fmt: skip
    return name


def _live(bench: ours.Bench) -> None:
    """The backlog, one finished execution with its events and trace, and a staff user."""
    from django.contrib.auth import get_user_model

    from executions.models import ExecutionEvent, TraceEntry

    now = datetime.now(UTC)
    template = _template("tmpl_live", "queued", now - timedelta(seconds=1))
    generated = {"id": "'live_' || g", "run_id": "'liverun_' || g", "fair_seq": "g", "idempotency_key": "NULL"}
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        _copies(conn, template, 1, BACKLOG, generated)
        conn.execute("DELETE FROM executions_execution WHERE id = %s", [template])
    done = _template(DETAIL, "succeeded", now)
    for offset, kind in enumerate(("execution_started", "execution_completed"), 1):
        ExecutionEvent.objects.create(id=LIVE_EVENT_IDS + offset, execution_id=done, run_id=done, node_id=ours.NODE_ID,
                                      target=f"{ours.NODE_ID}.{ours.REASONER}", type=kind, status="succeeded",
                                      created_at=now)  # fmt: skip
        TraceEntry.objects.create(execution_id=done, kind="log", level="info", message=f"step {offset}", created_at=now)
    get_user_model().objects.create_user("bench-staff", is_staff=True, is_superuser=True)


def _old(bench: ours.Bench, count: int) -> None:
    """`count` finished executions created 61..31 days ago (1 in 10 failed), 2 events and 2 trace entries each."""
    template = _template("tmpl_old", "succeeded", datetime.now(UTC) - OLD_SPAN - timedelta(days=31))
    born = f"t.created_at + g * interval '{OLD_SPAN.total_seconds() * 1000 / count:.3f} milliseconds'"
    failed = "mod(g, 10) = 0"
    generated = {
        "id": "'old_' || g", "run_id": "'oldrun_' || g / 4", "fair_seq": "g", "idempotency_key": "NULL",
        "status": f"CASE WHEN {failed} THEN 'failed' ELSE 'succeeded' END",
        "error": f"CASE WHEN {failed} THEN 'agent answered 500' ELSE '' END",
        "result": f"CASE WHEN {failed} THEN NULL ELSE t.result END",
        "created_at": born, "run_at": born, "started_at": born,
        "completed_at": f"{born} + interval '2 seconds'", "updated_at": f"{born} + interval '2 seconds'",
    }  # fmt: skip
    events = (
        "INSERT INTO executions_executionevent (id, execution_id, run_id, node_id, target, type, status, data, created_at)"
        " SELECT 2 * g - 1 + k, 'old_' || g, 'oldrun_' || g / 4, 'bench', 'bench.noop',"
        " CASE k WHEN 0 THEN 'execution_started' ELSE 'execution_completed' END,"
        " CASE k WHEN 0 THEN 'running' ELSE 'succeeded' END, '{}', now() - interval '31 days'"
        " FROM generate_series(%s::bigint, %s::bigint) g, generate_series(0, 1) k"
    )
    trace = (
        "INSERT INTO executions_traceentry (execution_id, kind, level, message, data, created_at)"
        " SELECT 'old_' || g, 'log', 'info', 'processed document ' || k || ' of 2', '{}', now() - interval '31 days'"
        " FROM generate_series(%s::bigint, %s::bigint) g, generate_series(1, 2) k"
    )
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        for first in range(1, count + 1, CHUNK):
            last = min(count, first + CHUNK - 1)
            _copies(conn, template, first, last, generated)
            conn.execute(events, [first, last])
            conn.execute(trace, [first, last])
            progress(f"10 inserted {last:,} of {count:,} old executions")
        conn.execute("DELETE FROM executions_execution WHERE id = %s", [template])
    _vacuum(bench)


def _vacuum(bench: ours.Bench) -> float:
    began = time.perf_counter()
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(TABLES.values())}")
    return time.perf_counter() - began


def _prune(count: int) -> list[Row]:
    """Prune until nothing is due, as the dispatchers' housekeeping would (one batch per call)."""
    from django.utils import timezone

    from executions import retention

    total, batches = retention.Pruned(), []
    began = mark = time.perf_counter()
    while (pruned := retention.prune_batch(timezone.now(), resume_at=total.resume_at)).executions:
        batches.append(-mark + (mark := time.perf_counter()))
        total.add(pruned)
        total.resume_at = pruned.resume_at
    seconds = time.perf_counter() - began
    if total.executions != count:
        raise RuntimeError(f"pruned {total.describe()}, expected {count:,} executions")
    progress(f"10 pruned {total.describe()} in {seconds:.1f} s")
    case, tenth = f"prune {count:,} old executions", max(1, len(batches) // 10)
    note = (
        f"{len(batches):,} batches of 500; {total.events:,} events and {total.trace_entries:,} trace entries with them"
    )
    return [
        Row("10", case, "executions pruned per second", "rows/s", [count / seconds], note=note),
        Row("10", case, "whole prune", "s", [seconds]),
        Row("10", case, "batch, first tenth: p50", "ms", [percentile(batches[:tenth], 50) * 1000]),
        Row("10", case, "batch, last tenth: p50", "ms", [percentile(batches[-tenth:], 50) * 1000]),
    ]


def _claim_times(count: int) -> list[float]:
    from django.db import connection

    from executions import queue

    times = []
    for _ in range(count):
        now = datetime.now(UTC)
        began = time.perf_counter()
        claimed = queue.claim("bench", now, CLAIM_LIMIT, lease_seconds=600, alive_seconds=30)
        times.append((time.perf_counter() - began) * 1000)
        if len(claimed) != CLAIM_LIMIT:
            raise RuntimeError(f"claim returned {len(claimed)} rows, expected {CLAIM_LIMIT}")
        with connection.cursor() as cursor:  # give them back: the next claim sees the same backlog
            cursor.execute(
                "UPDATE executions_execution SET run_at = %s, lease_token = NULL, claimed_by = '', attempt = 0,"
                " node_instance_id = '', dispatched_at = NULL WHERE id = ANY(%s)",
                [now - timedelta(seconds=1), [item.execution.id for item in claimed]],
            )
    return times


def _page_times(client, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
    return times


def _sizes(bench: ours.Bench, phase: str) -> list[Row]:
    rows = []
    with psycopg.connect(bench.conninfo, autocommit=True) as conn:
        for name, table in TABLES.items():
            total, indexes, live, dead = conn.execute(
                "SELECT pg_total_relation_size(c.oid), pg_indexes_size(c.oid), s.n_live_tup, s.n_dead_tup"
                " FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = %s::regclass",
                [table],
            ).fetchone()
            note = f"indexes {indexes / 2**20:,.1f} MiB; pg_stat: {live:,} live, {dead:,} dead tuples"
            rows.append(Row("10", phase, f"size: {name} table + indexes", "MiB", [total / 2**20], note=note))
    return rows


def _phase(ctx, bench: ours.Bench, client, phase: str) -> list[Row]:
    """Claim and page latencies (p50 and p99 of each run, `ctx.repeat` runs) and sizes, now.

    The untimed warm-up of each run is not in the percentiles; the phase's very first claim or
    request is noted apart: it is the one that meets the dead index entries before any hint.
    """
    measured = [("claim 32", None, CLAIMS)] + list(PAGES)
    rows = {name: (Row("10", phase, f"{name}: p50", "ms"), Row("10", phase, f"{name}: p99", "ms"))
            for name, _, _ in measured}  # fmt: skip
    for rep in range(ctx.repeat):
        for name, path, count in measured:
            warm = WARM_UP if path is None else PAGE_WARM_UP
            times = _claim_times(warm + count) if path is None else _page_times(client, path, warm + count)
            rows[name][0].samples.append(percentile(times[warm:], 50))
            rows[name][1].samples.append(percentile(times[warm:], 99))
            if rep == 0:
                what = "claims" if path is None else "requests"
                rows[name][
                    0
                ].note = f"{count} {what} per run after {warm} untimed; the phase's first: {times[0]:,.1f} ms"
        summary = ", ".join(f"{name} {p50.samples[-1]:.1f}/{p99.samples[-1]:.1f}" for name, (p50, p99) in rows.items())
        progress(f"10 {phase}: rep {rep + 1}/{ctx.repeat} p50/p99 ms: {summary}")
    return [row for pair in rows.values() for row in pair] + _sizes(bench, phase)


def run(ctx) -> list[Row]:
    bench = ours.Bench.start(ctx.server)
    try:
        from django.contrib.auth import get_user_model
        from django.test import Client

        bench.reset()
        _live(bench)
        _vacuum(bench)
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench-staff"))
        count = ctx.pruned_rows
        rows = _phase(ctx, bench, client, f"baseline: {BACKLOG:,} queued")
        _old(bench, count)
        rows += _phase(ctx, bench, client, f"with {count:,} old rows")
        rows += _prune(count)
        rows += _phase(ctx, bench, client, "right after pruning")
        seconds = _vacuum(bench)
        rows.append(
            Row("10", f"prune {count:,} old executions", "then VACUUM (ANALYZE) of the 3 tables", "s", [seconds])
        )
        rows += _phase(ctx, bench, client, "after VACUUM (ANALYZE)")
    finally:
        bench.stop()
    return rows
