"""Wake-ups for idle loops: PostgreSQL LISTEN on a dedicated connection, polling as the fallback.

NOTIFY is only a hint (it can be lost while the listener reconnects); the tables are the truth,
so a missed notification costs at most one poll interval.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from django.db import connection

logger = logging.getLogger(__name__)


class Wakeup:
    """An event set by notifications on `channels` (from a background thread) or by `poke()`."""

    def __init__(self, channels: list[str], listen: bool = True) -> None:
        self.event = threading.Event()
        self._channels = channels
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="wakeup-listener", daemon=True)
        self._listen_enabled = listen
        self._params = {**connection.get_connection_params(), "autocommit": True}
        self._params.pop("cursor_factory", None)
        self._params.pop("context", None)

    def start(self) -> None:
        if self._listen_enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.event.set()

    def poke(self) -> None:
        self.event.set()

    def wait(self, timeout: float) -> None:
        """Sleep until a notification, a poke, or `timeout` seconds."""
        self.event.wait(timeout)
        self.event.clear()

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                with psycopg.connect(**self._params) as conn:
                    for channel in self._channels:
                        conn.execute(f'LISTEN "{channel}"')
                    backoff = 0.5
                    self.event.set()  # anything committed while we were away is due now
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.event.set()
            except psycopg.Error as exc:
                logger.warning("wakeup listener lost its connection (%s); retrying in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)
