"""Scenario 1: drain N pre-enqueued no-op jobs — our dispatcher vs Procrastinate vs django-tasks-db.

Every system gets the same backlog on the same server (each in its own scratch database), jobs
enqueued in bulk before the clock starts. The rate is N / (first job started → last job
finished) from each system's own timestamps; wall-clock rates (start-up included) and commits
per job are in the notes. Repetitions are interleaved (ours, peer, peer, ours, ...) so every
system sees the same background load.
"""

from __future__ import annotations

import os
import statistics
import traceback
from collections.abc import Callable

from bench import ours, peer_djtasks, peer_procrastinate
from bench.report import Drain, Row, Unavailable, fmt, progress


class _System:
    def __init__(self, row: Row, drain: Callable[[], Drain]) -> None:
        self.row, self.drain, self.results = row, drain, []

    def finish(self, jobs: int) -> Row:
        if not self.results:
            return self.row
        walls = [result.wall_rate for result in self.results]
        commits = sorted(result.commits_per_job for result in self.results)
        extra = f"{jobs:,} jobs; {commits[len(commits) // 2]:.2f} commits/job; wall incl. start-up {fmt(min(walls))}–{fmt(max(walls))}/s"
        self.row.note = f"{extra}; {self.row.note}".rstrip("; ")
        return self.row


def _systems(ctx, bench) -> list[_System]:
    systems = []
    if bench is not None:
        row = Row(
            "1a",
            "ours: run_dispatcher (1 process)",
            "drain",
            "jobs/s",
            note=f"concurrency {ctx.concurrency}, stub agent answers 200",
        )
        systems.append(_System(row, lambda: bench.drain(ctx.jobs, ctx.concurrency)))
        wide = ctx.concurrency * 4
        row = Row(
            "1a",
            f"ours: run_dispatcher --concurrency {wide}",
            "drain",
            "jobs/s",
            note=f"concurrency {wide}: bigger claim and outcome batches per round trip (not in the ratios)",
        )
        systems.append(_System(row, lambda: bench.drain(ctx.jobs, wide)))
    peer_procrastinate.prepare(ctx.server)
    row = Row(
        "1b",
        "Procrastinate 3.10 worker (1 process)",
        "drain",
        "jobs/s",
        note=f"async no-op, concurrency {ctx.concurrency}",
    )
    systems.append(_System(row, lambda: peer_procrastinate.drain(ctx.server, ctx.jobs, ctx.concurrency)))
    url = peer_djtasks.prepare(ctx.server)
    for workers in sorted({1, os.cpu_count() or 1}):
        row = Row(
            "1c",
            f"django-tasks-db 0.13 db_worker ({workers} proc)",
            "drain",
            "jobs/s",
            note="1 task per poll, persistent conn",
        )
        systems.append(_System(row, lambda w=workers: peer_djtasks.drain(ctx.server, url, ctx.jobs, w)))
    return systems


def _cpu_bound(system: _System) -> list[Row]:
    """Our CPU per job by process, and the rate at which it would keep every core busy."""
    samples = [result.cpu_us_per_job for result in system.results if result.cpu_us_per_job]
    if not samples:
        return []
    totals = [sum(sample.values()) for sample in samples]
    parts = ", ".join(f"{name} {statistics.median(s[name] for s in samples):,.0f}" for name in samples[0])
    cores = os.cpu_count() or 1
    bound = cores * 1e6 / statistics.median(totals)
    note = f"µs of CPU per job: {parts}; {cores} cores all busy at this cost: {bound:,.0f} jobs/s"
    label = system.row.case.replace("ours: run_dispatcher", "ours: CPU per job").replace("(1 process)", "").strip()
    return [Row("1a", label, "CPU, all processes", "µs/job", samples=totals, note=note)]


def _ratios(rows: list[Row]) -> list[Row]:
    our = rows[0].median if rows and rows[0].scenario == "1a" else None
    ratios = []
    for peer in [row for row in rows if row.scenario != "1a" and not row.case.startswith("ratio")]:
        ratio = Row("1", f"ratio ours / {peer.case}", "median ÷ median", "×")
        if our and peer.median:
            ratio.samples = [our / peer.median]
        else:
            ratio.unavailable = "needs both medians"
        ratios.append(ratio)
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
    rows += [system.finish(ctx.jobs) for system in systems]
    ours_cpu = [row for system in systems if system.row.scenario == "1a" for row in _cpu_bound(system)]
    return rows + ours_cpu + _ratios(rows)
