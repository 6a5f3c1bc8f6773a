"""Scenario 2: the physical ceiling — the SKIP LOCKED claim/finish cycle as raw SQL (peers.md §2.2).

A scratch `jobs` table with a pre-filled backlog; C client processes each loop "claim B in one
transaction, finish those B in another" until the backlog is empty. No Django, no HTTP: this is
what one PostgreSQL on this machine can do for the queue shape we use.
"""

from __future__ import annotations

import multiprocessing
import time

import psycopg

from bench import pg
from bench.report import Row, progress

SCHEMA = """
DROP TABLE IF EXISTS jobs;
CREATE TABLE jobs (
  id bigserial PRIMARY KEY, queue text NOT NULL DEFAULT 'default', state text NOT NULL DEFAULT 'queued',
  priority int NOT NULL DEFAULT 0, run_at timestamptz NOT NULL DEFAULT now(), attempts int NOT NULL DEFAULT 0,
  locked_by text, lease_expires_at timestamptz, finished_at timestamptz,
  payload jsonb NOT NULL DEFAULT '{}', result jsonb);
CREATE INDEX jobs_ready ON jobs (queue, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
"""

FILL = """
INSERT INTO jobs (payload)
SELECT jsonb_build_object('n', g, 'pad', repeat('x', 200)) FROM generate_series(1, %s) g
"""

CLAIM = """
WITH c AS (
  SELECT id FROM jobs
  WHERE state = 'queued' AND queue = 'default' AND run_at <= now()
  ORDER BY priority DESC, run_at, id
  LIMIT %s FOR UPDATE SKIP LOCKED)
UPDATE jobs j SET state = 'running', attempts = j.attempts + 1,
       locked_by = %s, lease_expires_at = now() + interval '30 seconds'
FROM c WHERE j.id = c.id
RETURNING j.id
"""

FINISH = """
UPDATE jobs SET state = 'succeeded', finished_at = now(), lease_expires_at = NULL, result = '{}'
WHERE id = ANY(%s) AND state = 'running'
"""


def _client(conninfo: str, batch: int, name: str, start, done_queue) -> None:
    """One client connection: claim `batch`, finish them, until nothing is left; report the count."""
    finished = 0
    with psycopg.connect(conninfo) as conn:
        start.wait()
        while True:
            with conn.transaction():
                ids = [row[0] for row in conn.execute(CLAIM, [batch, name], prepare=True)]
            if not ids:
                break
            with conn.transaction():
                conn.execute(FINISH, [ids], prepare=True)
            finished += len(ids)
    done_queue.put(finished)


def _prepare(conninfo: str, jobs: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(FILL, [jobs])
        conn.execute("VACUUM ANALYZE jobs")


def drain(conninfo: str, jobs: int, clients: int, batch: int) -> float:
    """Jobs per second to drain `jobs` rows with `clients` connections claiming `batch` at a time."""
    _prepare(conninfo, jobs)
    context = multiprocessing.get_context("fork")
    start, done_queue = context.Event(), context.Queue()
    workers = [
        context.Process(target=_client, args=(conninfo, batch, f"w{i}", start, done_queue)) for i in range(clients)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let every client connect before the clock starts
    began = time.perf_counter()
    start.set()
    total = sum(done_queue.get(timeout=600) for _ in workers)
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join(timeout=30)
    if total != jobs:
        raise RuntimeError(f"drained {total} of {jobs} jobs")
    return total / elapsed


def run(ctx) -> list[Row]:
    srv: pg.Server = ctx.server
    name = srv.scratch_name("raw")
    pg.recreate_database(srv, name)
    conninfo = srv.conninfo(name)
    rows = []
    for batch in (1, 10):
        for clients in ctx.ceiling_clients:
            label = f"raw SQL, {clients} conn, {'1 job' if batch == 1 else f'{batch} jobs'}/txn"
            row = Row("2", label, "claim+finish", "jobs/s")
            per_job = 0.0
            for rep in range(ctx.repeat):
                before = pg.commits(srv, name)
                row.samples.append(drain(conninfo, ctx.ceiling_jobs, clients, batch))
                time.sleep(1.1)  # backends flush their statistics about once a second
                per_job = (pg.commits(srv, name) - before) / ctx.ceiling_jobs
                progress(
                    f"2 {label}: rep {rep + 1}/{ctx.repeat} {row.samples[-1]:,.0f} jobs/s, {per_job:.2f} commits/job"
                )
            row.note = f"{ctx.ceiling_jobs:,} queued rows; {per_job:.2f} commits/job"
            rows.append(row)
    return rows
