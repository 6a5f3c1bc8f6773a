"""The liveness policy is a pure function of the last heartbeat, the shutdown notice and `now`;
the queryset filters and the SQL fragment of the queue say the same at the window's edge."""

from datetime import timedelta

import pytest
from django.db import connection

from nodes import liveness
from nodes.models import NodeInstance
from tests.factories import make_instance, make_node


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


# One rule, three spellings: the pure function, the queryset filter and the SQL fragment of the
# queue's raw statements. Each case is (last heartbeat, shutdown notice) relative to `now`, window 7 s.
WINDOW = 7
EDGES = {
    "fresh": (timedelta(seconds=0), None, True),
    "just inside the window": (timedelta(seconds=WINDOW) - timedelta(microseconds=1), None, True),
    "exactly one window old": (timedelta(seconds=WINDOW), None, False),
    "just outside the window": (timedelta(seconds=WINDOW, microseconds=1), None, False),
    "stopped with a fresh heartbeat": (timedelta(seconds=0), timedelta(seconds=0), False),
    "stopped and silent": (timedelta(hours=1), timedelta(hours=1), False),
    "never heard from": (None, None, False),
}


def _moments(now, case):
    age, stopped, _ = EDGES[case]
    return (None if age is None else now - age), (None if stopped is None else now - stopped)


@pytest.mark.parametrize("case", EDGES)
def test_the_pure_rule_at_the_edges(now, case):
    beat, shutdown = _moments(now, case)
    assert liveness.is_alive(beat, shutdown, now, WINDOW) is EDGES[case][2]
    assert (liveness.health_status(beat, shutdown, now, WINDOW) == liveness.ACTIVE) is EDGES[case][2]


@pytest.mark.django_db
def test_the_sql_fragments_agree_with_the_pure_rule(now):
    rows = [(case, *_moments(now, case)) for case in EDGES]
    params = {"alive_after": liveness.cutoff(now, WINDOW)}
    values = []
    for n, row in enumerate(rows):
        params |= {f"name{n}": row[0], f"beat{n}": row[1], f"shutdown{n}": row[2]}
        values.append(f"(%(name{n})s, %(beat{n})s::timestamptz, %(shutdown{n})s::timestamptz)")
    sql = (
        f"SELECT name, ({liveness.ALIVE_SQL}) IS TRUE, ({liveness.HEARD_SQL}) IS TRUE"  # noqa: S608
        f" FROM (VALUES {', '.join(values)}) AS i(name, last_heartbeat_at, shutdown_at)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        answers = {name: (alive, heard) for name, alive, heard in cursor.fetchall()}
    for case, beat, shutdown in rows:
        assert answers[case] == (
            liveness.is_alive(beat, shutdown, now, WINDOW),
            liveness.heard_from(beat, now, WINDOW),
        ), case


@pytest.mark.django_db
def test_the_queryset_agrees_with_the_pure_rule(now):
    node = make_node("edges", now=now)
    NodeInstance.objects.filter(node=node).delete()
    cases = [case for case in EDGES if EDGES[case][0] is not None]  # the column is NOT NULL
    for case in cases:
        beat, shutdown = _moments(now, case)
        make_instance(node, case, last_heartbeat_at=beat, shutdown_at=shutdown)
    instances = NodeInstance.objects.filter(node=node)
    alive = set(instances.alive(now, WINDOW).values_list("instance_id", flat=True))
    assert alive == {case for case in cases if EDGES[case][2]}
    for health in liveness.HEALTH_STATUSES:
        expected = {i.instance_id for i in instances if i.health_status(now, WINDOW) == health}
        assert set(instances.with_health(health, now, WINDOW).values_list("instance_id", flat=True)) == expected
