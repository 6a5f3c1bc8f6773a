"""The django-tasks-db peer: a no-op task, a bulk enqueue, and drains with `db_worker --batch`.

Runs under bench/peer_settings.py in child processes, against its own scratch database.
"""

from __future__ import annotations

import sys
import time

from bench import pg, procs
from bench.report import Drain


def _enqueue(count: int) -> None:
    """Child side: enqueue `count` no-op tasks in one transaction."""
    import django

    django.setup()
    from django.db import transaction

    from bench.peer_tasks import noop

    with transaction.atomic():
        for _ in range(count):
            noop.enqueue()


def _env(url: str) -> dict:
    return procs.env_for(url, settings_module="bench.peer_settings")


def prepare(srv: pg.Server) -> str:
    """A fresh scratch database with django-tasks-db's tables; returns its DATABASE_URL."""
    name = srv.scratch_name("djtasks")
    pg.recreate_database(srv, name)
    url = srv.url(name)
    procs.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v0"], _env(url))
    return url


def drain(srv: pg.Server, url: str, jobs: int, workers: int) -> Drain:
    """Drain `jobs` pre-enqueued no-op tasks with `workers` db_worker processes."""
    import psycopg

    dbname = srv.scratch_name("djtasks")
    conninfo = srv.conninfo(dbname)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE django_tasks_database_dbtaskresult")
    procs.run([sys.executable, "-m", "bench.peer_djtasks", "enqueue", str(jobs)], _env(url))
    pg.analyze(srv, dbname)
    args = [sys.executable, "-m", "django", "db_worker", "--batch", "--no-startup-delay", "--no-reload"]
    # --verbosity 0: at the default (1) db_worker sets its loggers to INFO whatever LOGGING says
    # and logs two lines per task (state=RUNNING, state=SUCCESSFUL); every system runs at WARNING.
    args += ["--interval", "0", "--verbosity", "0"]
    commits_before = pg.commits(srv, dbname)
    children = [procs.Process(f"db_worker{i}", args + ["--worker-id", f"w{i}"], _env(url)) for i in range(workers)]
    count = "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE finished_at IS NOT NULL"
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            watched = procs.watch(children, lambda: conn.execute(count).fetchone()[0], jobs, "django-tasks-db")
            for child in children:
                child.wait(timeout=30)
    finally:
        for child in children:
            child.stop()
    time.sleep(1.1)  # let the last statistics reach pg_stat_database
    commits = pg.commits(srv, dbname) - commits_before - watched.polls
    with psycopg.connect(conninfo, autocommit=True) as conn:
        first, last, done = conn.execute(
            "SELECT min(started_at), max(finished_at), count(*) FILTER (WHERE status = 'SUCCESSFUL')"
            " FROM django_tasks_database_dbtaskresult"
        ).fetchone()
    if done != jobs:
        raise RuntimeError(f"django-tasks-db finished {done} of {jobs}")
    return Drain(jobs / (last - first).total_seconds(), jobs / watched.seconds, commits / jobs)


if __name__ == "__main__" and sys.argv[1:2] == ["enqueue"]:
    _enqueue(int(sys.argv[2]))
