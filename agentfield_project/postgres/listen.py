"""Connection settings for the dedicated LISTEN connections (the dispatcher's wake-up, the server's hub).

A LISTEN connection lives outside Django's pool for as long as the process does. It takes the
same settings as every other connection (settings.py adds a connect timeout and TCP keepalives,
so a half-open connection after a failover becomes an error within about half a minute instead
of a wait that never ends), minus the parts that only make sense inside Django.

LISTEN needs a connection of its own on the server: behind PgBouncer in transaction mode a
notification goes to whichever client holds the server connection at that moment. There,
AGENTFIELD_LISTEN_DATABASE_URL names a way around the pooler (PostgreSQL itself, or a
session-mode pool) for these connections only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection


def listen_params() -> dict[str, Any]:
    """psycopg keyword arguments for a LISTEN connection (Django's database unless redirected)."""
    params = dict(connection.get_connection_params())
    for name in ("cursor_factory", "context", "pool"):
        params.pop(name, None)
    # Never prepare statements (psycopg would after five runs): a pooler may not keep them.
    params["prepare_threshold"] = None
    direct = settings.AGENTFIELD_LISTEN_DATABASE
    if direct:
        fields = {"dbname": "NAME", "user": "USER", "password": "PASSWORD", "host": "HOST", "port": "PORT"}
        params.update({name: direct[key] for name, key in fields.items() if direct.get(key)})
        params.update(direct.get("OPTIONS", {}))
    return params
