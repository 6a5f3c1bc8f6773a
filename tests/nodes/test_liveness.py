"""The liveness policy is a pure function of the last heartbeat, the shutdown notice and `now`."""

from datetime import timedelta

from nodes import liveness


def test_a_recent_heartbeat_is_active(now):
    assert liveness.health_status(now - timedelta(seconds=6.9), None, now, 7) == liveness.ACTIVE


def test_a_heartbeat_exactly_one_window_old_is_inactive(now):
    assert liveness.health_status(now - timedelta(seconds=7), None, now, 7) == liveness.INACTIVE


def test_silence_longer_than_the_window_is_inactive(now):
    assert liveness.health_status(now - timedelta(hours=3), None, now, 7) == liveness.INACTIVE


def test_a_shutdown_notice_is_offline_even_with_a_fresh_heartbeat(now):
    assert liveness.health_status(now, now, now, 7) == liveness.OFFLINE


def test_the_window_is_a_parameter(now):
    beat = now - timedelta(seconds=30)
    assert liveness.health_status(beat, None, now, 60) == liveness.ACTIVE
    assert liveness.health_status(beat, None, now, 10) == liveness.INACTIVE
