"""Wake-ups for idle loops: PostgreSQL LISTEN on a dedicated connection, polling as the fallback.

NOTIFY is only a hint (it can be lost while the listener reconnects); the tables are the truth,
so a missed notification costs at most one poll interval.
"""

from __future__ import annotations

import threading

import psycopg

from agentfield_project.postgres.listen import listen_until

# The listener's own pause between connection attempts never grows beyond this.
BACKOFF_CAP_SECONDS = 10.0


class Wakeup:
    """An event set by notifications on `channels` (from a background thread) or by `poke()`.

    It also remembers which channels fired since `fired()` was last asked, so a loop runner can
    run only the loops that have something to do.
    """

    def __init__(self, channels: list[str], listen: bool = True) -> None:
        self.event = threading.Event()
        self._channels = channels
        self._fired: set[str] = set()
        self._heard: dict[str, int] = dict.fromkeys(channels, 0)  # notifications per channel, pokes not counted
        self._fired_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="wakeup-listener", daemon=True)
        self._listen_enabled = listen

    def start(self) -> None:
        if self._listen_enabled:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.event.set()

    def poke(self, channel: str | None = None) -> None:
        """Wake the waiter; with `channel`, as if that channel had been notified."""
        if channel is not None:
            self._fire(channel)
        self.event.set()

    def fired(self) -> set[str]:
        """The channels notified (or poked) since the last call."""
        with self._fired_lock:
            fired, self._fired = self._fired, set()
        return fired

    def heard(self, channel: str) -> int:
        """How many times `channel` was notified (or the listener reconnected) so far: a change means news."""
        with self._fired_lock:
            return self._heard[channel]

    def _hear(self, channel: str) -> None:
        with self._fired_lock:
            self._heard[channel] += 1
        self.poke(channel)

    def _fire(self, channel: str) -> None:
        with self._fired_lock:
            self._fired.add(channel)

    def wait(self, timeout: float) -> None:
        """Sleep until a notification, a poke, or `timeout` seconds."""
        self.event.wait(timeout)
        self.event.clear()

    def _listen(self) -> None:
        listen_until(
            self._stopping, self._channels, self._session, name="dispatcher wakeup", backoff_cap=BACKOFF_CAP_SECONDS
        )

    def _session(self, conn: psycopg.Connection) -> None:
        """Poke every channel (anything committed while we were away is due now), then each notified one."""
        for channel in self._channels:
            self._hear(channel)
        while not self._stopping.is_set():
            for notify in conn.notifies(timeout=1.0, stop_after=1):
                self._hear(notify.channel)
