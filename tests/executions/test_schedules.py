"""Cron schedules (executions/schedules.py): one execution per tick, catch-up policy, the admin."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection

from executions.models import Execution, Schedule
from executions.schedules import Scheduler
from tests.factories import make_node


def schedule(now, **fields) -> Schedule:
    values = {"name": "nightly", "target": "batch.echo", "input": {"n": 1}, "cron": "*/5 * * * *"}
    values.update(fields)
    values.setdefault("next_fire_at", now)
    return Schedule.objects.create(**values)


def scheduler_at(moment) -> Scheduler:
    return Scheduler(clock=lambda: moment)


@pytest.fixture
def batch(now):
    return make_node("batch", now=now)


@pytest.mark.django_db
def test_a_due_schedule_fires_one_execution_and_moves_to_its_next_tick(now, batch):
    item = schedule(now, priority=3)
    scheduler_at(now).run_once()
    [execution] = Execution.objects.all()
    assert (execution.target, execution.input, execution.priority) == ("batch.echo", {"n": 1}, 3)
    item.refresh_from_db()
    assert item.next_fire_at == now + timedelta(minutes=5)  # `now` is 12:00: the next */5 tick
    assert (item.last_fired_at, item.last_execution_id, item.last_error) == (now, execution.id, "")
    scheduler_at(now + timedelta(minutes=1)).run_once()
    assert Execution.objects.count() == 1  # not due again before its tick


@pytest.mark.django_db
def test_a_schedule_not_yet_due_or_disabled_does_not_fire(now, batch):
    schedule(now, next_fire_at=now + timedelta(seconds=1))
    schedule(now, name="off", enabled=False)
    scheduler_at(now).run_once()
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_after_downtime_the_once_policy_fires_one_execution_for_all_the_missed_ticks(now, batch):
    item = schedule(now - timedelta(hours=3), cron="* * * * *", misfire="once")
    scheduler_at(now).run_once()
    assert Execution.objects.count() == 1  # not 180
    item.refresh_from_db()
    assert item.next_fire_at == now + timedelta(minutes=1)


@pytest.mark.django_db
def test_after_downtime_the_skip_policy_fires_nothing_late_and_keeps_to_the_schedule(now, batch, settings):
    settings.AGENTFIELD_SCHEDULE_GRACE_SECONDS = 60
    late = schedule(now - timedelta(hours=3), cron="* * * * *", misfire="skip")
    on_time = schedule(now - timedelta(seconds=30), name="on-time", cron="* * * * *", misfire="skip")
    scheduler_at(now).run_once()
    assert [execution.input for execution in Execution.objects.all()] == [{"n": 1}]  # only the on-time one
    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.next_fire_at == on_time.next_fire_at == now + timedelta(minutes=1)
    assert late.last_fired_at is None


@pytest.mark.django_db
def test_a_schedule_whose_target_is_gone_says_so_and_keeps_ticking(now):
    item = schedule(now, target="gone.echo")
    scheduler_at(now).run_once()
    assert not Execution.objects.exists()
    item.refresh_from_db()
    assert "node 'gone' not found" in item.last_error
    assert item.next_fire_at == now + timedelta(minutes=5)


@pytest.mark.django_db(transaction=True)
def test_a_tick_fires_once_however_many_dispatchers_look_at_the_same_moment(now, batch):
    schedule(now)
    schedule(now, name="second", input={"n": 2})
    start = threading.Barrier(4)
    errors = []

    def dispatcher() -> None:
        try:
            start.wait(timeout=30)
            scheduler_at(now).run_once()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(execution.input["n"] for execution in Execution.objects.all()) == [1, 2]


# -- the admin ------------------------------------------------------------------------------------


def form(**fields) -> dict:
    values = {"name": "hourly", "target": "batch.echo", "input": '{"n": 1}', "priority": 0, "enabled": "on"}
    values.update({"cron": "0 * * * *", "timezone": "Europe/Paris", "misfire": "once", **fields})
    return values


def test_a_schedule_made_in_the_admin_knows_its_next_tick(admin_client):
    response = admin_client.post("/admin/executions/schedule/add/", form())
    assert response.status_code == 302
    item = Schedule.objects.get()
    assert item.next_fire_at is not None and item.next_fire_at.minute == 0
    listing = admin_client.get("/admin/executions/schedule/").content.decode()
    assert "hourly" in listing and "Europe/Paris" in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "61 * * * *"}, "minute must be within"),
        ({"timezone": "Nowhere/City"}, "unknown time zone"),
        ({"target": "no-dot"}, "exactly one dot"),
    ],
)
def test_the_admin_refuses_what_the_scheduler_could_not_use(admin_client, fields, message):
    response = admin_client.post("/admin/executions/schedule/add/", form(**fields))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Schedule.objects.exists()


def test_disabling_clears_the_next_tick_and_fire_now_is_logged(admin_client, now):
    make_node("batch", now=now)
    item = schedule(now)
    admin_client.post("/admin/executions/schedule/", {"action": "disable", "_selected_action": [item.pk]})
    item.refresh_from_db()
    assert (item.enabled, item.next_fire_at) == (False, None)
    admin_client.post("/admin/executions/schedule/", {"action": "fire_now", "_selected_action": [item.pk]})
    [execution] = Execution.objects.all()
    messages = list(LogEntry.objects.values_list("change_message", flat=True))
    assert f"Fired now as {execution.id}." in messages and "Disabled." in messages
