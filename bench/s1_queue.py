"""Scenario 1: drain N pre-enqueued no-op jobs — our dispatcher vs Procrastinate vs django-tasks-db.

Every system gets the same backlog on the same server (each in its own scratch database), jobs
enqueued in bulk before the clock starts. The rate is N / (first job started → last job
finished) from each system's own timestamps; the wall-clock rate (worker start-up included) is
in the notes.
"""

from __future__ import annotations

import os

from bench import ours, peer_djtasks, peer_procrastinate
from bench.report import Row, Unavailable, fmt, progress


def _repeat(ctx, row: Row, label: str, drain) -> Row:
    walls = []
    for rep in range(ctx.repeat):
        rate, wall = drain()
        row.samples.append(rate)
        walls.append(wall)
        progress(f"1 {label}: rep {rep + 1}/{ctx.repeat} {rate:,.0f} jobs/s (wall {wall:,.0f} jobs/s)")
    row.note = f"{ctx.jobs:,} jobs; wall-clock incl. start-up {fmt(min(walls))}–{fmt(max(walls))} jobs/s. " + row.note
    return row


def _ours(ctx) -> Row:
    row = Row("1a", "ours: run_dispatcher (1 process)", "drain", "jobs/s", note=f"dispatcher concurrency {ctx.concurrency}, HTTP 200 stub agent")
    try:
        bench = ours.Bench.start(ctx.server)
    except Unavailable as reason:
        row.unavailable = str(reason)
        return row
    try:
        return _repeat(ctx, row, "ours", lambda: bench.drain(ctx.jobs, ctx.concurrency))
    finally:
        bench.stop()


def _procrastinate(ctx) -> Row:
    conninfo = peer_procrastinate.prepare(ctx.server)
    row = Row("1b", "Procrastinate 3.10 worker (1 process)", "drain", "jobs/s", note=f"async no-op task, concurrency {ctx.concurrency}")
    return _repeat(ctx, row, "procrastinate", lambda: peer_procrastinate.drain(conninfo, ctx.jobs, ctx.concurrency))


def _djtasks(ctx, workers: int) -> Row:
    url = peer_djtasks.prepare(ctx.server)
    row = Row("1c", f"django-tasks-db 0.13 db_worker ({workers} process{'es' if workers > 1 else ''})", "drain", "jobs/s")
    row.note = "one task per poll, --interval 0"
    return _repeat(ctx, row, f"django-tasks-db x{workers}", lambda: peer_djtasks.drain(ctx.server, url, ctx.jobs, workers))


def run(ctx) -> list[Row]:
    rows = [_ours(ctx), _procrastinate(ctx), _djtasks(ctx, 1)]
    cores = os.cpu_count() or 1
    if cores > 1:
        rows.append(_djtasks(ctx, cores))
    our = rows[0].median
    for peer in rows[1:]:
        ratio = Row("1", f"ratio ours / {peer.case.split(' ')[0]} ({peer.case.split('(')[-1].rstrip(')')})", "median ratio", "×")
        if our and peer.median:
            ratio.samples = [our / peer.median]
        else:
            ratio.unavailable = "needs both medians"
        rows.append(ratio)
    return rows
