"""The dispatcher's wake-up: notifications (through the one LISTEN helper) wake it and name their
channel; after its connection is lost it comes back and treats every channel as notified."""

from __future__ import annotations

import psycopg
import pytest

from agentfield_project.postgres.listen import listen_params
from executions.wakeup import Wakeup
from tests.processes import wait_until

CHANNELS = ["wakeup_test_a", "wakeup_test_b"]


@pytest.fixture
def sender(db):
    with psycopg.connect(**listen_params(), autocommit=True) as conn:
        yield conn


@pytest.fixture
def wakeup(db):
    waker = Wakeup(CHANNELS)
    waker.start()
    yield waker
    waker.stop()
    waker._thread.join(30)
    assert not waker._thread.is_alive()


def fires(wakeup: Wakeup, channels: list[str], message: str) -> None:
    """Wait until every channel of `channels` fired (over as many `fired()` calls as it takes)."""
    so_far: set[str] = set()
    wait_until(lambda: so_far.update(wakeup.fired()) or set(channels) <= so_far, timeout=30, message=message)


def test_a_notification_wakes_the_waiter_and_names_its_channel(wakeup, sender):
    fires(wakeup, CHANNELS, "the first connection's catch-up poke")
    sender.execute("SELECT pg_notify(%s, '')", [CHANNELS[1]])
    wait_until(lambda: wakeup.fired() == {CHANNELS[1]}, timeout=30, message="the notification, and only its channel")
    assert wakeup.event.is_set()


def test_after_its_connection_is_killed_it_reconnects_and_treats_every_channel_as_notified(wakeup, sender):
    fires(wakeup, CHANNELS, "the first connection's catch-up poke")
    killed = sender.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'agentfield-dispatcher-wakeup' AND datname = current_database()"
    ).fetchall()
    assert killed == [(True,)]
    fires(wakeup, CHANNELS, "the catch-up poke after reconnecting")
    sender.execute("SELECT pg_notify(%s, '')", [CHANNELS[0]])
    fires(wakeup, [CHANNELS[0]], "a notification on the new connection")


def test_heard_counts_notifications_and_reconnects_not_pokes(wakeup, sender):
    """The dispatcher claims after news (`heard` moved); its own pokes (a call ended) are no news."""
    wait_until(lambda: wakeup.heard(CHANNELS[0]) == 1, timeout=30, message="the first connection's catch-up")
    wakeup.poke(CHANNELS[0])
    assert CHANNELS[0] in wakeup.fired() and wakeup.heard(CHANNELS[0]) == 1
    sender.execute("SELECT pg_notify(%s, '')", [CHANNELS[0]])
    wait_until(lambda: wakeup.heard(CHANNELS[0]) == 2, timeout=30, message="the notification counted")
    assert wakeup.heard(CHANNELS[1]) == 1
