"""The dispatcher's round-robin: which loops run in a round, and how it sleeps."""

from __future__ import annotations

import threading

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
