"""The one LISTEN helper: its connections' settings (Django's database, or the way around a pooler
when one is named), and its two loops (async for the server, a thread for the dispatcher)."""

from __future__ import annotations

import asyncio
import contextlib
import queue as stdlib_queue
import threading

import psycopg
import pytest
from django.db import connection

from agentfield_project.postgres.listen import listen_forever, listen_params, listen_until


def test_by_default_a_listen_connection_goes_where_django_goes_without_its_cursor_classes():
    params = listen_params()
    django_params = connection.get_connection_params()
    assert (params["host"], params.get("port"), params["dbname"]) == (
        django_params["host"],
        django_params.get("port"),
        django_params["dbname"],
    )
    assert "cursor_factory" not in params and "context" not in params and "pool" not in params
    assert params["prepare_threshold"] is None  # nothing prepared: a pooler may not keep it
    assert params["keepalives"] == 1 and params["connect_timeout"] == 10


def test_a_listen_database_url_takes_it_around_the_pooler(settings):
    settings.AGENTFIELD_LISTEN_DATABASE = {
        "NAME": "direct", "USER": "listener", "PASSWORD": "", "HOST": "10.0.0.5", "PORT": 5433,
        "OPTIONS": {"sslmode": "require"},
    }  # fmt: skip
    params = listen_params()
    assert (params["host"], params["port"], params["dbname"], params["user"]) == (
        "10.0.0.5",
        5433,
        "direct",
        "listener",
    )
    assert params["sslmode"] == "require"
    assert params["keepalives"] == 1  # the rest still comes from Django's settings


# The loops themselves, against the real PostgreSQL: both hear every channel, come back after
# their connection is killed (as after a database restart) and never stop on their own.
CHANNELS = ["listen_test_one", "listen_test_two"]
NAME = "listen test"  # its connection's application_name is agentfield-listen-test


@pytest.fixture
def sender(db):
    """An autocommit connection to the test database: NOTIFYs and kills listeners."""
    with psycopg.connect(**listen_params(), autocommit=True) as conn:
        yield conn


def notify(sender: psycopg.Connection, channel: str, payload: str) -> None:
    sender.execute("SELECT pg_notify(%s, %s)", [channel, payload])


def kill_listener(sender: psycopg.Connection) -> int:
    """Terminate the helper's connection; how many were terminated."""
    rows = sender.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'agentfield-listen-test' AND datname = current_database()"
    ).fetchall()
    return sum(1 for (killed,) in rows if killed)


class Heard:
    """What a test session saw: its connections (by backend pid) and the notifications, in order."""

    def __init__(self) -> None:
        self.items: stdlib_queue.Queue = stdlib_queue.Queue()
        self.lost = 0

    def next(self) -> tuple[str, str]:
        return self.items.get(timeout=30)

    def on_lost(self) -> None:
        self.lost += 1


def test_listen_until_hears_each_channel_and_reconnects_after_its_connection_is_killed(sender, caplog):
    stop, heard = threading.Event(), Heard()

    def session(conn: psycopg.Connection) -> None:
        heard.items.put(("connected", str(conn.info.backend_pid)))
        while not stop.is_set():
            for note in conn.notifies(timeout=0.2, stop_after=1):
                heard.items.put((note.channel, note.payload))

    thread = threading.Thread(
        target=listen_until,
        args=(stop, CHANNELS, session),
        kwargs={"name": NAME, "backoff_cap": 0.5, "on_lost": heard.on_lost},
        daemon=True,
    )
    thread.start()
    try:
        kind, first_pid = heard.next()
        assert kind == "connected"
        notify(sender, CHANNELS[0], "a")
        notify(sender, CHANNELS[1], "b")
        assert [heard.next(), heard.next()] == [(CHANNELS[0], "a"), (CHANNELS[1], "b")]
        assert kill_listener(sender) == 1
        kind, second_pid = heard.next()
        assert kind == "connected" and second_pid != first_pid and heard.lost == 1
        notify(sender, CHANNELS[1], "c")
        assert heard.next() == (CHANNELS[1], "c")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()  # stopping ends it, and nothing else did
    assert "listen test: database unavailable" in caplog.text


def test_listen_until_starts_over_after_a_bug_in_its_session(sender, caplog):
    stop, heard = threading.Event(), Heard()
    calls = []

    def session(conn: psycopg.Connection) -> None:
        calls.append(conn.info.backend_pid)
        if len(calls) == 1:
            raise RuntimeError("a bug in the session")
        heard.items.put(("connected", ""))
        stop.wait()

    thread = threading.Thread(
        target=listen_until, args=(stop, CHANNELS, session), kwargs={"name": NAME, "backoff_cap": 0.5}, daemon=True
    )
    thread.start()
    try:
        assert heard.next() == ("connected", "")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and len(calls) == 2
    failure = next(record for record in caplog.records if record.getMessage() == "listen test failed; starting over")
    assert failure.exc_info[0] is RuntimeError


def test_listen_forever_hears_each_channel_and_reconnects_after_its_connection_is_killed(sender, caplog):
    heard = Heard()

    async def session(conn: psycopg.AsyncConnection) -> None:
        heard.items.put(("connected", str(conn.info.backend_pid)))
        async for note in conn.notifies():
            heard.items.put((note.channel, note.payload))

    async def scenario() -> None:
        task = asyncio.get_running_loop().create_task(
            listen_forever(CHANNELS, session, name=NAME, backoff_cap=0.5, on_lost=heard.on_lost)
        )
        try:
            kind, first_pid = await asyncio.to_thread(heard.next)
            assert kind == "connected"
            await asyncio.to_thread(notify, sender, CHANNELS[0], "a")
            await asyncio.to_thread(notify, sender, CHANNELS[1], "b")
            assert [await asyncio.to_thread(heard.next) for _ in range(2)] == [(CHANNELS[0], "a"), (CHANNELS[1], "b")]
            assert await asyncio.to_thread(kill_listener, sender) == 1
            kind, second_pid = await asyncio.to_thread(heard.next)
            assert kind == "connected" and second_pid != first_pid and heard.lost == 1
            await asyncio.to_thread(notify, sender, CHANNELS[0], "c")
            assert await asyncio.to_thread(heard.next) == (CHANNELS[0], "c")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert task.cancelled()  # only cancelling ends it

    asyncio.run(scenario())
    assert "listen test: database unavailable" in caplog.text
