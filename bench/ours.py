"""Our side of the benchmarks: a migrated scratch database, a registered stub node, dispatchers.

The harness process itself runs Django against the scratch database (once per process), so it
can enqueue with the ORM and call `executions.queue.claim` directly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench import pg, procs
from bench.report import Drain, Unavailable

NODE_ID = "bench"
REASONER = "noop"
_django_url: str | None = None


def require(module: str, what: str) -> None:
    """Raise Unavailable unless `module` exists on this branch (i.e. the feature has landed)."""
    if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None or importlib.util.find_spec(module) is None:
        raise Unavailable(f"{what} has not landed on this branch")


def setup_django(srv: pg.Server) -> str:
    """Create and migrate the `ours` scratch database and point this process's Django at it (once)."""
    global _django_url
    if _django_url is None:
        name = srv.scratch_name("ours")
        pg.recreate_database(srv, name)
        _django_url = srv.url(name)
        procs.manage(_django_url, "migrate", "--noinput", "-v0")
        os.environ["DATABASE_URL"] = _django_url
        os.environ["DJANGO_SETTINGS_MODULE"] = "agentfield_project.settings"
        import django

        django.setup()
    return _django_url


class Bench:
    """A scratch database with one node (the stub agent) kept alive by a heartbeat thread."""

    def __init__(self, srv: pg.Server, url: str, stub: procs.StubAgent) -> None:
        self.server, self.url, self.stub = srv, url, stub
        self.dbname = srv.scratch_name("ours")
        self.conninfo = srv.conninfo(self.dbname)
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="bench-heartbeat")
        self.dispatchers: list[procs.Process] = []

    @classmethod
    def start(cls, srv: pg.Server, stub_status: int = 200) -> Bench:
        require("executions.dispatcher", "run_dispatcher")
        url = setup_django(srv)
        bench = cls(srv, url, procs.StubAgent(stub_status))
        bench.register_node(NODE_ID, bench.stub.url, [REASONER])
        bench._beat.start()
        return bench

    def register_node(self, node_id: str, base_url: str, reasoners: list[str]) -> None:
        """The node and its one instance (liveness and dispatch are per instance)."""
        from nodes.models import Node, NodeInstance

        now = datetime.now(UTC)
        fields = {"base_url": base_url, "reasoners": [{"id": name} for name in reasoners], "instance_id": "bench-1"}
        fields |= {"lifecycle_status": "ready", "registered_at": now - timedelta(minutes=1), "last_heartbeat_at": now}
        node, _ = Node.objects.update_or_create(id=node_id, defaults=fields)
        NodeInstance.objects.update_or_create(
            node=node,
            instance_id="bench-1",
            defaults={"base_url": base_url, "lifecycle_status": "ready", "registered_at": fields["registered_at"],
                      "last_heartbeat_at": now},
        )  # fmt: skip

    def _heartbeat(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.wait(1.0):
                conn.execute("UPDATE nodes_node SET last_heartbeat_at = now() WHERE instance_id = 'bench-1'")
                conn.execute("UPDATE nodes_nodeinstance SET last_heartbeat_at = now() WHERE instance_id = 'bench-1'")

    def reset(self) -> None:
        """Empty the execution and delivery tables (nodes stay)."""
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public'"
                " AND (tablename LIKE 'executions_%%' OR tablename LIKE 'webhooks_%%') AND tablename <> 'executions_eventcounter'"
            ).fetchone()[0]
            conn.execute(f"TRUNCATE {tables}")
            conn.execute("VACUUM ANALYZE")
        self.stub.reset()

    def enqueue(
        self, count: int, node_id: str = NODE_ID, name: str = REASONER, batch: int = 5000, analyze: bool = False
    ) -> None:
        """Bulk-insert `count` queued executions (the row the API writes, without its 'queued' event).

        With `analyze`, one transaction that also ANALYZEs the tables (see `pg.analyze`): the
        backlog, its statistics and the NOTIFY reach running dispatchers together.
        """
        from django.db import connection, transaction

        from executions.dispatcher import ExecutionDispatcher
        from executions.models import Execution
        from executions.services import new_id

        now = datetime.now(UTC)
        with transaction.atomic() if analyze else contextlib.nullcontext():
            for start in range(0, count, batch):
                rows = [
                    Execution(
                        id=f"{new_id('exec')}_{start + i}",
                        run_id=new_id("run"),
                        node_id=node_id,
                        target_name=name,
                        input={},
                        run_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                    for i in range(min(batch, count - start))
                ]
                Execution.objects.bulk_create(rows)
            with connection.cursor() as cursor:
                if analyze:
                    cursor.execute("ANALYZE")
                cursor.execute("SELECT pg_notify(%s, '')", [ExecutionDispatcher.channel])

    def count(self, status: str = "succeeded") -> int:
        from executions.models import Execution

        return Execution.objects.filter(status=status).count()

    def start_dispatcher(self, *args: str, **settings) -> procs.Process:
        env = procs.env_for(self.url, **settings)
        process = procs.Process("dispatcher", [sys.executable, "manage.py", "run_dispatcher", *args], env)
        self.dispatchers.append(process)
        return process

    def drain(self, jobs: int, concurrency: int, processes: int = 1) -> Drain:
        """Drain `jobs` executions with `processes` dispatchers; rate from the stub's first request."""
        self.reset()
        launched = time.perf_counter()
        dispatchers = [self.start_dispatcher("--concurrency", str(concurrency)) for _ in range(processes)]
        # The backlog arrives once every dispatcher LISTENs, so CPU per job leaves out every
        # dispatcher's start-up (with two, the second could still be importing Django after the
        # first dispatch); the wall rate adds the start-up back, as the peers' wall rates include it.
        procs.wait_until(lambda: self._listening(dispatchers) >= processes, 60, 0.05, "dispatchers listening")
        started_up = time.perf_counter() - launched
        self.enqueue(jobs, analyze=True)
        commits_before = pg.commits(self.server, self.dbname)
        cpu_before = self._cpu(dispatchers)
        done_before = self.count()
        watched = procs.watch(dispatchers, self.count, jobs, "ours")
        cpu = {name: seconds - cpu_before[name] for name, seconds in self._cpu(dispatchers).items()}
        for dispatcher in dispatchers:
            dispatcher.stop()
            self.dispatchers.remove(dispatcher)
        time.sleep(1.1)  # let the last statistics reach pg_stat_database
        # Polls and this harness's heartbeats (one per second) are not the dispatchers' commits.
        commits = pg.commits(self.server, self.dbname) - commits_before - watched.polls - watched.seconds
        if self.count() != jobs:
            raise RuntimeError(f"ours finished {self.count()} of {jobs}:\n{dispatchers[0].output()}")
        rate = jobs / (self.last_completion() - self.stub.stats()["first"])
        cpu_us = {name: seconds / max(1, jobs - done_before) * 1e6 for name, seconds in cpu.items()}
        return Drain(rate, jobs / (started_up + watched.seconds), commits / jobs, cpu_us)

    def _listening(self, dispatchers: list[procs.Process]) -> int:
        """Backends of the scratch database that LISTEN (one per started dispatcher)."""
        for dispatcher in dispatchers:
            if not dispatcher.alive():
                raise RuntimeError(f"a dispatcher exited while starting:\n{dispatcher.output()}")
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN %%'"
            return conn.execute(query, [self.dbname]).fetchone()[0]

    def _cpu(self, dispatchers: list[procs.Process]) -> dict[str, float]:
        return {
            "dispatcher": sum(procs.cpu_seconds(dispatcher.pid) for dispatcher in dispatchers),
            "agent": procs.cpu_seconds(self.stub.process.pid),
            "postgres": procs.postgres_cpu_seconds(),
        }

    def last_completion(self) -> float:
        from django.db.models import Max

        from executions.models import Execution

        return Execution.objects.aggregate(last=Max("completed_at"))["last"].timestamp()

    def stop(self) -> None:
        self._stop.set()
        for process in self.dispatchers:
            process.stop()
        self.stub.stop()
