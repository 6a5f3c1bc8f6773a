"""A control plane from any checkout, driven only over HTTP and raw SQL.

Before/after runs start the server and dispatchers of another checkout (`--code-root`, e.g. a
git worktree of an older commit), whose schema differs from ours: so this harness never imports
that code nor sets up Django, it talks to the processes through the API and reads the scratch
database with plain SQL on columns both versions have.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psycopg

from bench import pg, procs
from bench.report import progress

SPOOL_DIR = Path(tempfile.gettempdir()) / "agentfield-bench-spool"
PG_PORT_HEX = ":1538"  # 5432, as /proc/net/tcp writes a remote port


def describe(code_root: Path) -> dict[str, str]:
    """The checkout under test and its commit ('+dirty' when files outside bench/ have uncommitted changes)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(code_root), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench") else ""
    return {"checkout": str(code_root), "commit": commit + dirty}


class Plane:
    """A migrated scratch database plus the server and dispatchers of one checkout."""

    def __init__(self, srv: pg.Server, suffix: str, code_root: Path) -> None:
        self.code_root = code_root
        self.dbname = srv.scratch_name(suffix)
        self.url = srv.url(self.dbname)
        self.admin_conninfo = srv.conninfo("postgres")  # counts backends without being one of them
        self.conninfo = srv.conninfo(self.dbname)
        self.api_key = ""
        self.server: procs.Process | None = None
        self.port = 0
        self.dispatchers: list[procs.Process] = []
        pg.recreate_database(srv, self.dbname)
        procs.manage(self.url, "migrate", "--noinput", "-v0", cwd=code_root)

    def create_api_key(self) -> None:
        """Issue a key (from then on the API requires one); every request of ours sends it."""
        try:
            self.api_key = procs.manage(self.url, "create_api_key", "bench", "--role", "admin", cwd=self.code_root)
        except Exception:  # noqa: BLE001 - a checkout from before key roles (--code-root) has no --role
            self.api_key = procs.manage(self.url, "create_api_key", "bench", cwd=self.code_root)
        self.api_key = self.api_key.strip()

    def start_server(self, **settings: Any) -> None:
        """`manage.py serve` (one process: it execs daphne, so its pid is daphne's) once healthy."""
        self.port = procs.free_port()
        args = [sys.executable, "manage.py", "serve", "--port", str(self.port), "--processes", "1"]
        env = procs.env_for(self.url, AGENTFIELD_CALLBACK_SPOOL_DIR=SPOOL_DIR, **settings)
        self.server = procs.Process("serve", args, env, cwd=self.code_root)

        def healthy() -> bool:
            if not self.server.alive():
                raise RuntimeError(f"serve exited:\n{self.server.output()}")
            try:
                return self.request("GET", "/api/v1/health", timeout=2)[0] == 200
            except OSError:
                return False

        procs.wait_until(healthy, 30, message="serve to answer /api/v1/health")

    def start_dispatcher(self, *args: str, **settings: Any) -> procs.Process:
        command = [sys.executable, "manage.py", "run_dispatcher", *args]
        process = procs.Process("dispatcher", command, procs.env_for(self.url, **settings), cwd=self.code_root)
        self.dispatchers.append(process)
        return process

    def headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        return headers | ({"X-API-Key": self.api_key} if self.api_key else {})

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        """One request on a fresh connection: (status, parsed JSON or text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, path, data, self.headers())
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw.decode(errors="replace")

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            return conn.execute(query, params or []).fetchall()

    def status_counts(self, target: str | None = None) -> dict[str, int]:
        where, params = ("WHERE target_name = %s", [target]) if target else ("", [])
        rows = self.sql(f"SELECT status, count(*) FROM executions_execution {where} GROUP BY status", params)  # noqa: S608
        return dict(rows)

    # What waiting costs the server: read from /proc and pg_stat_activity.

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.server.pid}/task"))

    def rss_mib(self) -> float:
        return self.server.rss_kib() / 1024

    def backends(self) -> int:
        """Client backends connected to the scratch database (server, dispatchers, anyone)."""
        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'"
            return conn.execute(query, [self.dbname]).fetchone()[0]

    def server_pg_connections(self) -> int:
        """TCP connections from the server process to port 5432 (its own share of the backends)."""
        pid = self.server.pid
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        count = 0
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                count += fields[2].endswith(PG_PORT_HEX) and fields[9] in inodes
        return count

    def stop(self) -> None:
        for process in [*self.dispatchers, *([self.server] if self.server else [])]:
            process.stop()


class StubNode:
    """A node registered over the API whose agent is a stub; a thread heart-beats it every second."""

    def __init__(self, plane: Plane, node_id: str, base_url: str, reasoners: list[str]) -> None:
        self.plane, self.node_id = plane, node_id
        self.instance_id = f"{node_id}-stub-1"
        self.failed_beats = 0
        body = {"id": node_id, "base_url": base_url, "instance_id": self.instance_id}
        status, answer = plane.request(
            "POST", "/api/v1/nodes/register", body | {"reasoners": [{"id": r} for r in reasoners]}
        )
        if status >= 300:
            raise RuntimeError(f"registering {node_id}: {status} {answer}")
        self._stop = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._beat_every_second, daemon=True, name=f"beat-{node_id}")
        self._thread.start()

    def _beat(self) -> None:
        path = f"/api/v1/nodes/{self.node_id}/heartbeat"
        try:
            status, _ = self.plane.request(
                "POST", path, {"status": "ready", "instance_id": self.instance_id}, timeout=5
            )
        except OSError:
            status = 0
        if status >= 300 or status == 0:
            # A heart-beat the server cannot take is part of what is measured (the node may go stale).
            self.failed_beats += 1
            if self.failed_beats in (1, 10, 100):
                progress(f"  heartbeat of {self.node_id} failed ({status or 'no answer'}), {self.failed_beats} so far")

    def _beat_every_second(self) -> None:
        while not self._stop.wait(1.0):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
