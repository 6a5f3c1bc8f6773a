"""The Procrastinate peer: a no-op task, `batch_defer` enqueue, and a `--one-shot` worker drain."""

from __future__ import annotations

import os
import sys
import time

import procrastinate

from bench import pg, procs
from bench.report import Drain

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", ""))
)


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


def drain(srv: pg.Server, jobs: int, concurrency: int) -> Drain:
    """Drain `jobs` pre-deferred no-op jobs with one worker of `concurrency` sub-workers."""
    dbname = srv.scratch_name("procrastinate")
    conninfo = srv.conninfo(dbname)
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
    local = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    with local.open():
        local.configure_task("noop").batch_defer(*({} for _ in range(jobs)))
    args = [sys.executable, "-m", "procrastinate", "--app=bench.peer_procrastinate.app", "worker", "--one-shot"]
    args += [f"--concurrency={concurrency}"]
    commits_before = pg.commits(srv, dbname)
    worker = procs.Process("procrastinate", args, procs.env_for(BENCH_PROCRASTINATE_DSN=conninfo))
    count = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            watched = procs.watch([worker], lambda: conn.execute(count).fetchone()[0], jobs, "procrastinate")
            worker.wait(timeout=30)
    finally:
        worker.stop()
    time.sleep(1.1)  # let the last statistics reach pg_stat_database
    commits = pg.commits(srv, dbname) - commits_before - watched.polls
    with psycopg.connect(conninfo, autocommit=True) as conn:
        first, last = conn.execute(
            "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
        ).fetchone()
        done = conn.execute(count).fetchone()[0]
    if done != jobs:
        raise RuntimeError(f"procrastinate finished {done} of {jobs}:\n{worker.output()}")
    return Drain(jobs / (last - first).total_seconds(), jobs / watched.seconds, commits / jobs)
