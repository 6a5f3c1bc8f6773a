"""The dispatcher's round-robin: which loops run in a round, and how it sleeps."""

from __future__ import annotations

import logging
import threading

import psycopg

from executions.runner import Runner
from executions.wakeup import Wakeup


class Loop:
    """A work loop that has work for its first `work` rounds; records when it ran."""

    def __init__(self, channel: str, work: int = 0) -> None:
        self.channel = channel
        self.work = work
        self.runs = 0

    def run_once(self) -> bool:
        self.runs += 1
        if self.work:
            self.work -= 1
            return True
        return False


def runner(loops: list[Loop], poll: float = 60.0, rounds: int | None = None) -> Runner:
    return Runner(loops, Wakeup([loop.channel for loop in loops], listen=False), poll, max_rounds=rounds)


def test_an_idle_loop_is_not_run_while_another_loop_is_busy():
    busy, idle = Loop("executions", work=50), Loop("deliveries")
    runner([busy, idle], rounds=40).run()
    assert busy.runs == 40
    assert idle.runs == 1  # the first round runs everything; then only its poll interval would


def test_a_fired_channel_runs_its_loop_in_the_next_round():
    busy, idle = Loop("executions", work=50), Loop("deliveries")
    loop_runner = runner([busy, idle], rounds=20)
    loop_runner.wakeup.poke("deliveries")  # before the first round: folded into it
    original = busy.run_once

    def poke_at_round_ten() -> bool:
        if busy.runs == 9:
            loop_runner.wakeup.poke("deliveries")
        return original()

    busy.run_once = poke_at_round_ten
    loop_runner.run()
    assert idle.runs == 2


def test_every_loop_is_polled_once_its_interval_has_passed():
    busy, idle = Loop("executions", work=10_000), Loop("deliveries")
    stop = threading.Timer(0.35, lambda: loop_runner.request_stop())
    loop_runner = runner([busy, idle], poll=0.1)
    stop.start()
    loop_runner.run()
    stop.join()
    assert 3 <= idle.runs <= 5


def test_once_stops_after_a_round_without_work():
    first, second = Loop("executions", work=3), Loop("deliveries", work=1)
    runner([first, second]).run(once=True)
    assert (first.runs, second.runs, first.work, second.work) == (4, 2, 0, 0)


def test_an_idle_runner_sleeps_until_a_poke():
    idle = Loop("executions")
    loop_runner = runner([idle], poll=60.0)
    thread = threading.Thread(target=loop_runner.run)
    thread.start()
    try:
        for _ in range(200):
            if idle.runs:
                break
            threading.Event().wait(0.01)
        assert idle.runs == 1
        threading.Event().wait(0.1)
        assert idle.runs == 1  # asleep: nothing fired and its poll is a minute away
        loop_runner.wakeup.poke("executions")
        for _ in range(200):
            if idle.runs == 2:
                break
            threading.Event().wait(0.01)
        assert idle.runs == 2
    finally:
        loop_runner.request_stop()
        thread.join(5)
    assert not thread.is_alive()


class FailingLoop(Loop):
    """Raises `error` on its first `failures` rounds, then behaves like Loop."""

    def __init__(self, channel: str, error: Exception, failures: int) -> None:
        super().__init__(channel)
        self.error = error
        self.failures = failures

    def run_once(self) -> bool:
        self.runs += 1
        if self.failures:
            self.failures -= 1
            raise self.error
        return False


def test_a_database_outage_is_logged_once_backed_off_and_survived(caplog, settings):
    settings.AGENTFIELD_DB_BACKOFF_CAP_SECONDS = 0.05
    flaky = FailingLoop("executions", psycopg.OperationalError("server closed the connection unexpectedly"), 4)
    other = Loop("deliveries")
    with caplog.at_level(logging.WARNING):
        runner([flaky, other], poll=0.01, rounds=8).run()
    assert flaky.runs >= 5  # four failures, then rounds that work
    outage_lines = [record.getMessage() for record in caplog.records if "database" in record.getMessage()]
    assert len(outage_lines) == 2, outage_lines
    assert outage_lines[0].startswith("dispatcher: database unavailable (OperationalError: server closed")
    assert outage_lines[1].startswith("dispatcher: database is back after")
    assert "(4 failed attempts)" in outage_lines[1]


def test_a_bug_in_a_round_is_logged_with_its_traceback_and_the_runner_goes_on(caplog, settings):
    settings.AGENTFIELD_DB_BACKOFF_CAP_SECONDS = 0.05
    buggy = FailingLoop("executions", KeyError("bug"), 2)
    with caplog.at_level(logging.ERROR):
        runner([buggy], poll=0.01, rounds=5).run()
    assert buggy.runs >= 3
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 2 and all(record.exc_info for record in errors)
