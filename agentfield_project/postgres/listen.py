"""Connection settings for the dedicated LISTEN connections (the dispatcher's wake-up, the server's hub).

A LISTEN connection lives outside Django's pool for as long as the process does. It takes the
same settings as every other connection (settings.py adds a connect timeout and TCP keepalives,
so a half-open connection after a failover becomes an error within about half a minute instead
of a wait that never ends), minus the parts that only make sense inside Django.
"""

from __future__ import annotations

from typing import Any

from django.db import connection


def listen_params() -> dict[str, Any]:
    """psycopg keyword arguments for the database Django uses, without Django's cursor classes or pool."""
    params = dict(connection.get_connection_params())
    for name in ("cursor_factory", "context", "prepare_threshold", "pool"):
        params.pop(name, None)
    return params
