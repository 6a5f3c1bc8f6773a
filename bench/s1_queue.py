"""Scenario 1: drain N pre-enqueued no-op jobs — our dispatcher vs Procrastinate vs django-tasks-db.

Every system gets the same backlog on the same server (each in its own scratch database), jobs
enqueued in bulk and analyzed before the clock starts, every system logging at WARNING. The rate
is N / (first job started → last job finished) from each system's own timestamps; wall-clock
rates (start-up included) and commits per job are in the notes. Repetitions are interleaved
(ours, peer, peer, ours, ...) so every system sees the same background load.

Each system runs in several configurations (processes × concurrency), and the ratios divide ours
with one dispatcher by each peer's best median. `--sweep` runs every configuration of `SWEEP`;
the default run, to stay short, runs each peer's first configuration (one process) and the one
the last sweep found best (`BEST`).
"""

from __future__ import annotations

import os
import statistics
import traceback
from collections.abc import Callable

from bench import ours, peer_djtasks, peer_procrastinate
from bench.report import Drain, Row, Unavailable, fmt, progress

CORES = os.cpu_count() or 1
# (processes, concurrency) per system. django-tasks-db's db_worker runs one task at a time.
SWEEP = {
    "ours": [(p, c) for p in (1, 2) for c in (8, 32)],
    "procrastinate": [(p, c) for p in (1, 2, 4) for c in (1, 4, 8, 32)],
    "djtasks": [(p, 1) for p in sorted({1, 2, CORES, 2 * CORES})],
}
# Each peer's best configuration in the last sweep (results/2026-12-02T1511-s1-sweep.md, 2 cores).
BEST = {"procrastinate": (4, 4), "djtasks": (2, 1)}
FAMILIES = {"ours": "1a", "procrastinate": "1b", "djtasks": "1c"}


class _System:
    def __init__(self, family: str, config: tuple[int, int], row: Row, drain: Callable[[], Drain]) -> None:
        self.family, self.config = family, config
        self.row, self.drain, self.results = row, drain, []

    def finish(self, jobs: int) -> Row:
        if not self.results:
            return self.row
        walls = [result.wall_rate for result in self.results]
        commits = sorted(result.commits_per_job for result in self.results)
        extra = f"{jobs:,} jobs; {commits[len(commits) // 2]:.2f} commits/job; wall incl. start-up {fmt(min(walls))}–{fmt(max(walls))}/s"
        self.row.note = f"{extra}; {self.row.note}".rstrip("; ")
        return self.row


def _configs(ctx, family: str) -> list[tuple[int, int]]:
    if ctx.sweep:
        return SWEEP[family]
    first = {"ours": (1, ctx.concurrency), "procrastinate": (1, ctx.concurrency), "djtasks": (1, 1)}[family]
    best = BEST.get(family, (1, ctx.concurrency * 4))  # ours: bigger batches per round trip
    return [first] if best == first else [first, best]


def _label(family: str, processes: int, concurrency: int) -> str:
    if family == "ours":
        return f"ours: run_dispatcher, {processes} proc × concurrency {concurrency}"
    if family == "procrastinate":
        return f"Procrastinate 3.10 worker, {processes} proc × concurrency {concurrency}"
    return f"django-tasks-db 0.13 db_worker, {processes} proc"


def _systems(ctx, bench) -> list[_System]:
    systems = []
    drains = {
        "ours": lambda p, c: lambda: bench.drain(ctx.jobs, c, p),
        "procrastinate": lambda p, c: lambda: peer_procrastinate.drain(ctx.server, ctx.jobs, c, p),
    }
    notes = {
        "ours": "stub agent answers 200: one HTTP call per job",
        "procrastinate": "async no-op, `--one-shot`",
        "djtasks": "1 task per poll, persistent conn",
    }
    peer_procrastinate.prepare(ctx.server)
    url = peer_djtasks.prepare(ctx.server)
    drains["djtasks"] = lambda p, c: lambda: peer_djtasks.drain(ctx.server, url, ctx.jobs, p)
    for family in FAMILIES:
        if family == "ours" and bench is None:
            continue
        for processes, concurrency in _configs(ctx, family):
            row = Row(FAMILIES[family], _label(family, processes, concurrency), "drain", "jobs/s", note=notes[family])
            systems.append(_System(family, (processes, concurrency), row, drains[family](processes, concurrency)))
    return systems


def _cpu_bound(system: _System) -> list[Row]:
    """Our CPU per job by process, and the rate at which it would keep every core busy."""
    samples = [result.cpu_us_per_job for result in system.results if result.cpu_us_per_job]
    if not samples:
        return []
    totals = [sum(sample.values()) for sample in samples]
    parts = ", ".join(f"{name} {statistics.median(s[name] for s in samples):,.0f}" for name in samples[0])
    bound = CORES * 1e6 / statistics.median(totals)
    note = f"µs of CPU per job: {parts}; {CORES} cores all busy at this cost: {bound:,.0f} jobs/s"
    label = system.row.case.replace("ours: run_dispatcher", "ours: CPU per job")
    return [Row("1a", label, "CPU, all processes", "µs/job", samples=totals, note=note)]


def _best(systems: list[_System], family: str) -> _System | None:
    measured = [system for system in systems if system.family == family and system.row.median]
    return max(measured, key=lambda system: system.row.median, default=None)


def _ratios(ctx, systems: list[_System]) -> list[Row]:
    """Ours with one dispatcher (and, after a sweep, ours at its best) ÷ each peer at its best."""
    ours_one = next((s for s in systems if s.family == "ours" and s.config == (1, ctx.concurrency)), None)
    mine = [("ours, 1 dispatcher", ours_one)]
    if ctx.sweep:
        mine.append(("ours at its best", _best(systems, "ours")))
    ratios = []
    for family in ("procrastinate", "djtasks"):
        peer = _best(systems, family)
        for name, system in mine:
            case = f"ratio {name} / {family} at its best"
            if peer is None or system is None or not system.row.median:
                ratios.append(Row("1", case, "median ÷ median", "×", unavailable="needs both medians"))
                continue
            note = f"{system.row.case} ÷ {peer.row.case}"
            ratios.append(
                Row("1", case, "median ÷ median", "×", samples=[system.row.median / peer.row.median], note=note)
            )
    return ratios


def run(ctx) -> list[Row]:
    rows = []
    try:
        bench = ours.Bench.start(ctx.server)
    except Unavailable as reason:
        bench = None
        rows.append(Row("1a", "ours: run_dispatcher", "drain", "jobs/s", unavailable=str(reason)))
    try:
        systems = _systems(ctx, bench)
        for rep in range(ctx.repeat):
            for system in [system for system in systems if not system.row.unavailable]:
                try:
                    result = system.drain()
                except Exception as error:  # one broken system must not lose the others' numbers
                    traceback.print_exc()
                    system.row.unavailable = f"failed: {type(error).__name__}: {error}"[:300]
                    continue
                system.results.append(result)
                system.row.samples.append(result.rate)
                progress(
                    f"1 {system.row.case}: rep {rep + 1}/{ctx.repeat} {result.rate:,.0f} jobs/s, {result.commits_per_job:.2f} commits/job"
                )
    finally:
        if bench is not None:
            bench.stop()
    for family in FAMILIES:
        best = _best(systems, family)
        if best is not None and sum(system.family == family for system in systems) > 1:
            best.row.note = f"best {family} configuration run; {best.row.note}"
    rows += [system.finish(ctx.jobs) for system in systems]
    ours_cpu = [row for system in systems if system.family == "ours" for row in _cpu_bound(system)]
    return rows + ours_cpu + _ratios(ctx, systems)
