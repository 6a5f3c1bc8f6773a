"""The Procrastinate peer: a no-op task, `batch_defer` enqueue, and `--one-shot` worker drains."""

from __future__ import annotations

import logging
import os
import sys
import time

import procrastinate
import psycopg

from bench import pg, procs
from bench.report import Drain

# The connector's default pool (4 connections): 34 at concurrency 32 measured no faster here.
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", ""))
)


@app.task(name="noop")
async def noop() -> None:
    """Does nothing: the benchmark measures the queue, not the work."""


def prepare(srv: pg.Server) -> str:
    """A fresh scratch database with Procrastinate's schema; returns its conninfo."""
    # The harness defers through Procrastinate too: its INFO lines here are noise on stderr. (Not
    # at import: the workers import this module, and their level is the command line's.)
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    name = srv.scratch_name("procrastinate")
    pg.recreate_database(srv, name)
    conninfo = srv.conninfo(name)
    os.environ["BENCH_PROCRASTINATE_DSN"] = conninfo
    local = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    with local.open():
        local.schema_manager.apply_schema()
    return conninfo


def _worker_args(concurrency: int) -> list[str]:
    # --log-level=warning: the CLI's default is INFO, which logs two lines per job ("Starting
    # job", "ended with status: Success"): 1.45 MB per 10,000 jobs, ~0.2-0.4 ms more worker CPU
    # per job, and 15-40% fewer jobs/s in interleaved pairs here. Our dispatcher and
    # django-tasks-db run at WARNING too: every system logs alike.
    args = [sys.executable, "-m", "procrastinate", "--app=bench.peer_procrastinate.app", "--log-level=warning"]
    return args + ["worker", "--one-shot", f"--concurrency={concurrency}"]


def drain(srv: pg.Server, jobs: int, concurrency: int, processes: int = 1) -> Drain:
    """Drain `jobs` pre-deferred no-op jobs with `processes` workers of `concurrency` sub-workers."""
    dbname = srv.scratch_name("procrastinate")
    conninfo = srv.conninfo(dbname)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_workers CASCADE")
    local = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    with local.open():
        local.configure_task("noop").batch_defer(*({} for _ in range(jobs)))
    pg.analyze(srv, dbname)
    commits_before = pg.commits(srv, dbname)
    env = procs.env_for(BENCH_PROCRASTINATE_DSN=conninfo)
    workers = [procs.Process(f"procrastinate{i}", _worker_args(concurrency), env) for i in range(processes)]
    count = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            watched = procs.watch(workers, lambda: conn.execute(count).fetchone()[0], jobs, "procrastinate")
            for worker in workers:
                worker.wait(timeout=30)
    finally:
        for worker in workers:
            worker.stop()
    time.sleep(1.1)  # let the last statistics reach pg_stat_database
    commits = pg.commits(srv, dbname) - commits_before - watched.polls
    with psycopg.connect(conninfo, autocommit=True) as conn:
        first, last = conn.execute(
            "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
        ).fetchone()
        done = conn.execute(count).fetchone()[0]
    if done != jobs:
        raise RuntimeError(f"procrastinate finished {done} of {jobs}:\n{workers[0].output()}")
    return Drain(jobs / (last - first).total_seconds(), jobs / watched.seconds, commits / jobs)
