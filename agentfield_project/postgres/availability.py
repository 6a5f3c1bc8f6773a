"""Is the database unavailable? One answer for every process: the API's 503, the loops' back-off.

A database fault is a delay, never a crash: a restart, a failover or a network blip surfaces as
an exception from psycopg (or from its pool when no connection can be had in time). Those, and
only those, are "unavailable": the request is answered 503 with Retry-After and the loop backs
off and tries again. A constraint violation, a deadlock or a syntax error is a bug or a bad
request and keeps its own handling.

`Outage` turns a stream of failures and successes into one log line when the database goes away
and one when it is back, however many requests or rounds failed in between.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from psycopg_pool import PoolTimeout

logger = logging.getLogger(__name__)

CODE = "database_unavailable"
# The web process's watch pings at least this often during an outage: it decides when requests
# may use the database again.
WATCH_INTERVAL_CAP_SECONDS = 2.0
# SQLSTATE classes and codes that mean "the server went away or cannot take us now".
_UNAVAILABLE_CLASSES = ("08", "53")  # connection exception, insufficient resources
_UNAVAILABLE_CODES = ("57P01", "57P02", "57P03")  # admin/crash shutdown, cannot connect now


def is_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or an error it wraps) says the database cannot be reached right now."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, PoolTimeout | psycopg.InterfaceError):
            return True
        if isinstance(error, psycopg.OperationalError):
            state = error.sqlstate
            # No SQLSTATE: the failure is on the connection itself (refused, reset, closed).
            return state is None or state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_CODES
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def retry_after_seconds() -> int:
    return max(1, round(settings.AGENTFIELD_DB_RETRY_AFTER_SECONDS))


def unavailable_response(error: BaseException | None = None) -> JsonResponse:
    """The JSON 503 every route answers while the database is unavailable (`error` starts the watch)."""
    if error is not None:
        web.failed(error)
    seconds = retry_after_seconds()
    body = {"error": f"database unavailable; retry in {seconds} s", "code": CODE}
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(seconds)
    # The outage is logged once by `Outage`, not once per request by django.request.
    response._has_been_logged = True
    return response


def discard_connections() -> None:
    """Close this thread's database connections (a broken pooled one is then discarded, not reused)."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail; it is gone either way
            conn.connection = None


_last_failure = float("-inf")
# After a failure every pooled connection is pinged before it is lent, for this long: the
# database may have restarted, and each connection it dropped would otherwise fail a request.
SUSPICIOUS_SECONDS = 30.0


def failed_recently() -> bool:
    """Whether this process saw the database fail in the last SUSPICIOUS_SECONDS."""
    return time.monotonic() - _last_failure < SUSPICIOUS_SECONDS


class Outage:
    """The state of the database as one process sees it: one log line per outage and per recovery."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.since: float | None = None
        self.failures = 0
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> bool:
        """Record a failure; True when it starts an outage (and was logged)."""
        global _last_failure
        _last_failure = time.monotonic()
        with self._lock:
            self.failures += 1
            if self.since is not None:
                return False
            self.since = time.monotonic()
        logger.warning("%s: database unavailable (%s); backing off until it answers", self.who, _first_line(error))
        return True

    def recovered(self) -> bool:
        """Record a success; True when it ends an outage (and was logged)."""
        if self.since is None:  # the common case: no lock on the hot path
            return False
        with self._lock:
            if self.since is None:
                return False
            seconds, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        logger.warning("%s: database is back after %.1f s (%d failed attempts)", self.who, seconds, failures)
        return True


class Watch(Outage):
    """The web process's outage: its first failure starts a thread that pings until the database answers.

    Requests only ever fail (they answer 503 and are gone); the watch is what notices the end of
    an outage, logs it, and runs the recovery hooks (the executions app replays the callbacks it
    had to refuse, see executions/callback_spool.py). `start()` also runs them once at start-up.
    Only a failed ping opens the circuit: a request that failed on a pooled connection the
    database had dropped (right after a restart) is not an outage if the ping then answers.
    """

    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.hooks: list[Callable[[], object]] = []
        self._thread: threading.Thread | None = None
        self._down = threading.Event()

    def on_recovery(self, hook: Callable[[], object]) -> None:
        if hook not in self.hooks:
            self.hooks.append(hook)

    def failed(self, error: BaseException) -> bool:
        started = super().failed(error)
        if started:
            self.start()
        return started

    def circuit_open(self) -> bool:
        """Whether new connections should fail at once: a ping failed, and this is not the watch's next one.

        Without it every request of an outage would wait out the pool's timeout (seconds) for a
        connection that cannot come; the watch notices the recovery within a couple of seconds.
        """
        return self._down.is_set() and threading.current_thread() is not self._thread

    def start(self) -> None:
        """Ping the database from a background thread until it answers, then run the hooks (once)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="database-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        attempts = 0
        while _ping() is False:
            self._down.set()
            attempts += 1
            time.sleep(backoff_seconds(attempts, cap=WATCH_INTERVAL_CAP_SECONDS))
        self._down.clear()
        self.recovered()
        for hook in list(self.hooks):
            try:
                hook()
            except Exception:
                logger.exception("%s: a recovery hook failed", self.who)
            finally:
                discard_connections()


def _ping() -> bool | None:
    """True when the database answers, False when it is unavailable, None when this process cannot tell."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as error:  # noqa: BLE001 - anything but an answer is judged below
        if is_unavailable(error):
            return False
        logger.warning("database ping failed: %s", _first_line(error))
        return None
    finally:
        discard_connections()


# This process's web requests share one watch (a process serves requests from many threads).
web = Watch("server")


def backoff_seconds(failures: int, base: float = 0.5, cap: float = 10.0) -> float:
    """Full-jitter exponential back-off: a random delay up to base * 2^failures, at most `cap`."""
    high = min(cap, base * 2 ** max(0, failures - 1))
    return random.uniform(min(base / 2, high), high)  # noqa: S311


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{error.__class__.__name__}: {text[0]}" if text else error.__class__.__name__
