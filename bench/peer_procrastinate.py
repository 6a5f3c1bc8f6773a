"""The Procrastinate peer: a no-op task, `batch_defer` enqueue, and a `--one-shot` worker drain."""

from __future__ import annotations

import os
import sys

import procrastinate

from bench import pg, procs

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", "")))


@app.task(name="noop")
async def noop() -> None:
    """Does nothing: the benchmark measures the queue, not the work."""


def prepare(srv: pg.Server) -> str:
    """A fresh scratch database with Procrastinate's schema; returns its conninfo."""
    name = srv.scratch_name("procrastinate")
    pg.recreate_database(srv, name)
    conninfo = srv.conninfo(name)
    os.environ["BENCH_PROCRASTINATE_DSN"] = conninfo
    local = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    with local.open():
        local.schema_manager.apply_schema()
    return conninfo


def drain(conninfo: str, jobs: int, concurrency: int) -> tuple[float, float]:
    """(jobs/s from first start to last success, wall-clock jobs/s including worker start-up)."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
    local = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    with local.open():
        local.configure_task("noop").batch_defer(*({} for _ in range(jobs)))
    args = [sys.executable, "-m", "procrastinate", "--app=bench.peer_procrastinate.app", "worker", "--one-shot"]
    args += [f"--concurrency={concurrency}"]
    worker = procs.Process("procrastinate", args, procs.env_for(BENCH_PROCRASTINATE_DSN=conninfo))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        count = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        wall = procs.watch([worker], lambda: conn.execute(count).fetchone()[0], jobs, "procrastinate")
        worker.wait(timeout=30)
        first, last = conn.execute(
            "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
        ).fetchone()
        done = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'").fetchone()[0]
    worker.stop()
    if done != jobs:
        raise RuntimeError(f"procrastinate finished {done} of {jobs}:\n{worker.output()}")
    return jobs / (last - first).total_seconds(), jobs / wall
