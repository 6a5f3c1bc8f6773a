"""Where the benchmark databases live: the server of DATABASE_URL, or the embedded one.

Every scenario gets its own scratch database on that same server (`<name>_b_<suffix>`), so peers
never share tables with our apps and a run never touches the database the developer uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Server:
    """Connection fields of one PostgreSQL server plus the base database name."""

    user: str
    password: str
    host: str
    port: str
    dbname: str

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq conninfo string for `dbname` (the base database by default)."""
        fields = {"user": self.user, "host": self.host, "dbname": dbname or self.dbname}
        if self.port:
            fields["port"] = self.port
        if self.password:
            fields["password"] = self.password
        return psycopg.conninfo.make_conninfo(**fields)

    def url(self, dbname: str) -> str:
        """A DATABASE_URL (django-environ form) for `dbname`, for subprocesses."""
        auth = quote(self.user) + (f":{quote(self.password)}" if self.password else "") + "@"
        if self.host.startswith("/"):
            return f"postgresql://{auth}/{dbname}?host={self.host}"
        return f"postgres://{auth}{self.host}:{self.port or 5432}/{dbname}"

    def scratch_name(self, suffix: str) -> str:
        return f"{self.dbname}_b_{suffix}"[:63]


def server() -> Server:
    """The server of DATABASE_URL when set, else the embedded development server (started if needed)."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        info = psycopg.conninfo.conninfo_to_dict(url)
        return Server(
            user=str(info.get("user") or "postgres"),
            password=str(info.get("password") or ""),
            host=str(info.get("host") or ""),
            port=str(info.get("port") or ""),
            dbname=str(info.get("dbname") or "postgres"),
        )
    from agentfield_project.devdb import ensure_running

    fields = ensure_running()
    return Server(user=fields["USER"], password="", host=fields["HOST"], port=fields["PORT"], dbname=fields["NAME"])


def recreate_database(srv: Server, name: str) -> None:
    """Drop `name` if it exists (disconnecting its sessions) and create it empty."""
    with psycopg.connect(srv.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_facts(srv: Server) -> dict[str, str]:
    """Version and the settings that decide queue throughput (peers.md §5.11)."""
    names = [
        "shared_buffers",
        "synchronous_commit",
        "max_wal_size",
        "wal_level",
        "fsync",
        "autovacuum",
        "max_connections",
    ]
    with psycopg.connect(srv.conninfo("postgres"), autocommit=True) as conn:
        facts = {"version": conn.execute("SHOW server_version").fetchone()[0]}
        for name in names:
            facts[name] = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]
    facts["host"] = srv.host or "(default socket)"
    return facts


def commits(srv: Server, dbname: str) -> int:
    """Committed transactions so far in `dbname` (pg_stat_database; flushed by backends about every second)."""
    with psycopg.connect(srv.conninfo("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [dbname]).fetchone()
    return int(row[0]) if row else 0


def analyze(srv: Server, dbname: str) -> None:
    """ANALYZE every table of `dbname`, as autovacuum would after a bulk load.

    Every drain calls this after its backlog is in and before the clock starts, for every system
    alike: the benchmark server may run with autovacuum off (each results file says), and without
    statistics django-tasks-db's claim plans a bitmap scan and sort of all 10,000 ready rows,
    33 ms per claim instead of 0.05 ms.
    """
    with psycopg.connect(srv.conninfo(dbname), autocommit=True) as conn:
        conn.execute("ANALYZE")
