"""`python -m bench [--scenarios 1,2,...] [--full] ...`: run the scenarios, print and save the table."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import signal
import sys
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import pg, plane, procs
from bench.report import Row, Unavailable, calibration_ms, document, machine, progress, table

SCENARIOS = {
    "1": "bench.s1_queue",
    "2": "bench.s2_ceiling",
    "3": "bench.s3_api",
    "4": "bench.s4_latency",
    "5": "bench.s5_scale",
    "6": "bench.s6_fanout",
    "7": "bench.s7_webhooks",
    "8": "bench.s8_waiting",
    "9": "bench.s9_handoff",
    "10": "bench.s10_pruned",
    "11": "bench.s11_routes",
}
TITLES = {
    "1": "queue core vs peers",
    "2": "physical ceiling (raw SQL)",
    "3": "through the API",
    "4": "enqueue-to-dispatch latency",
    "5": "scale",
    "6": "fan-out",
    "7": "webhooks",
    "8": "waiting costs",
    "9": "duplicates per dispatcher SIGKILL",
    "10": "claim and console after pruning",
    "11": "server CPU per SDK request, by route",
}
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Context:
    """Everything a scenario needs: the server, the sizes and the repeat count."""

    server: pg.Server
    repeat: int
    jobs: int
    concurrency: int
    ceiling_jobs: int
    ceiling_clients: list[int]
    api_executions: int
    api_clients: int
    server_processes: int
    latency_samples: int
    scale_finished: list[int]
    scale_queued: int
    rss_counts: list[int]
    fanout: int
    webhooks: int
    code_root: Path = procs.ROOT
    waiters: int = 200
    streams: int = 1_000
    handoff: int = 200
    server_env: dict[str, str] = field(default_factory=dict)
    fanout_child_limit: int = 0  # scenarios 3 and 6: settings of the server
    pruned_rows: int = 200_000
    route_requests: int = 500
    sweep: bool = False
    notes: list[str] = field(default_factory=list)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenarios", default="1,2,3,4,5,6,7,8,9,10", help="comma-separated scenario numbers")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median and spread)")
    parser.add_argument("--full", action="store_true", help="the issue's sizes (1M finished rows, 100k executions)")
    parser.add_argument("--jobs", type=int, default=10_000, help="scenario 1: no-op jobs to drain")
    parser.add_argument("--concurrency", type=int, default=32, help="scenario 1: in-flight jobs per worker process")
    parser.add_argument(
        "--sweep", action="store_true", help="scenario 1: every system at every processes × concurrency (slow)"
    )
    parser.add_argument("--ceiling-jobs", type=int, default=20_000, help="scenario 2: backlog per run")
    parser.add_argument("--ceiling-clients", default="1,8", help="scenario 2: client connection counts")
    parser.add_argument("--api-executions", type=int, default=2_000, help="scenario 3: executions per run")
    parser.add_argument("--api-clients", type=int, default=16, help="scenario 3: concurrent HTTP clients")
    parser.add_argument(
        "--server-processes", type=int, default=1, help="scenario 3: `manage.py serve --processes` (daphne processes)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="scenarios 3 and 6: a setting of the server (e.g. AGENTFIELD_SDK_POLL_HOLD_SECONDS=0); repeatable",
    )
    parser.add_argument(
        "--fanout-child-limit", type=int, default=0, help="scenario 6: run at most N children at once (0: no limit)"
    )
    parser.add_argument("--latency-samples", type=int, default=200, help="scenario 4: enqueues per run")
    parser.add_argument("--scale-finished", default="10000,100000", help="scenario 5: finished rows in the table")
    parser.add_argument("--scale-queued", type=int, default=20_000, help="scenario 5: queued backlog")
    parser.add_argument("--rss-counts", default="1000,10000", help="scenario 5: executions before reading RSS")
    parser.add_argument(
        "--fanout", type=int, default=None, help="scenario 6: children per parent (1,000; --full: 5,000)"
    )
    parser.add_argument("--webhooks", type=int, default=2_000, help="scenario 7: deliveries per run")
    parser.add_argument("--waiters", type=int, default=200, help="scenario 8: synchronous executes held at once")
    parser.add_argument("--streams", type=int, default=1_000, help="scenario 8: event streams held open")
    parser.add_argument("--handoff", type=int, default=200, help="scenario 9: executions per dispatcher kill")
    parser.add_argument(
        "--pruned-rows", type=int, help="scenario 10: old finished executions to prune (200,000; --full 5,000,000)"
    )
    parser.add_argument("--route-requests", type=int, default=500, help="scenario 11: requests per route")
    parser.add_argument(
        "--code-root",
        default=str(procs.ROOT),
        help="scenarios 8, 9 and 11: the checkout whose server and dispatchers run (e.g. a worktree of an older"
        " commit); the other scenarios run the checkout the bench runs from, so run it from inside that one",
    )
    parser.add_argument("--label", default="", help="appended to the results file name, e.g. 'before'")
    parser.add_argument("--output", default=str(RESULTS), help="directory for the Markdown results")
    return parser


def _context(options: argparse.Namespace) -> Context:
    ints = lambda text: [int(part) for part in text.split(",") if part]  # noqa: E731
    if options.full:
        options.scale_finished, options.scale_queued, options.rss_counts = "10000,1000000", 100_000, "1000,100000"
        options.ceiling_jobs, options.ceiling_clients = max(options.ceiling_jobs, 100_000), "1,8,32"
    return Context(
        server=pg.server(),
        repeat=options.repeat,
        jobs=options.jobs,
        concurrency=options.concurrency,
        ceiling_jobs=options.ceiling_jobs,
        ceiling_clients=ints(options.ceiling_clients),
        api_executions=options.api_executions,
        api_clients=options.api_clients,
        server_processes=options.server_processes,
        server_env=dict(pair.split("=", 1) for pair in options.server_env),
        latency_samples=options.latency_samples,
        scale_finished=ints(options.scale_finished),
        scale_queued=options.scale_queued,
        rss_counts=ints(options.rss_counts),
        fanout=options.fanout or (5_000 if options.full else 1_000),
        fanout_child_limit=options.fanout_child_limit,
        webhooks=options.webhooks,
        code_root=Path(options.code_root).resolve(),
        waiters=options.waiters,
        streams=options.streams,
        handoff=options.handoff,
        pruned_rows=options.pruned_rows or (5_000_000 if options.full else 200_000),
        route_requests=options.route_requests,
        sweep=options.sweep,
    )


def _run_scenario(number: str, ctx: Context) -> list[Row]:
    """The scenario's rows, or one 'not available' row saying why it could not run."""
    progress(f"scenario {number}: {TITLES[number]}")
    try:
        return importlib.import_module(SCENARIOS[number]).run(ctx)
    except Unavailable as reason:
        progress(f"scenario {number} not available: {reason}")
        return [Row(number, TITLES[number], "–", "", unavailable=str(reason))]
    except Exception as error:  # a broken scenario must not lose the others' numbers
        traceback.print_exc()
        return [Row(number, TITLES[number], "–", "", unavailable=f"failed: {type(error).__name__}: {error}"[:300])]


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C: every scenario's `finally` stops its
    # child processes, and the rows measured so far are still written.
    raise KeyboardInterrupt


# The scenarios that start the checkout named by --code-root; the others run the bench's own.
CODE_ROOT_SCENARIOS = {"8", "9", "11"}


def _number(scenario: str) -> tuple[int, str]:
    return len(scenario), scenario  # "8" before "11"


def main(argv: list[str]) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    scenarios = [part.strip() for part in options.scenarios.split(",") if part.strip()]
    if Path(options.code_root).resolve() != procs.ROOT.resolve() and set(scenarios) - CODE_ROOT_SCENARIOS:
        # Measuring the bench's own checkout under another one's name would be a silent lie.
        parser.error(
            f"--code-root applies to scenarios {', '.join(sorted(CODE_ROOT_SCENARIOS, key=_number))} only; for scenario(s) "
            f"{', '.join(sorted(set(scenarios) - CODE_ROOT_SCENARIOS, key=_number))}, run the bench from inside {options.code_root}"
        )
    ctx = _context(options)
    command = "python -m bench " + shlex.join(argv) if argv else "python -m bench"
    facts = {"Machine": machine(), "PostgreSQL": pg.server_facts(ctx.server)}
    facts["Code under test (scenarios 8, 9, 11)"] = plane.describe(ctx.code_root)
    rows: list[Row] = []
    signal.signal(signal.SIGTERM, _interrupt)
    interrupted = False
    try:
        for number in scenarios:
            rows += _run_scenario(number, ctx)
    except KeyboardInterrupt:
        interrupted = True
        progress("interrupted: writing the rows measured so far")
    facts["Machine"]["load average (1/5/15 min) at end"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    facts["Machine"]["CPU speed at end"] = f"{calibration_ms():.1f} ms"
    text = document(command, facts, rows, ctx.notes)
    print(table(rows))
    out = Path(options.output)
    out.mkdir(parents=True, exist_ok=True)
    suffix = (f"-{options.label}" if options.label else "") + ("-partial" if interrupted else "")
    stem = f"{datetime.now(UTC).strftime('%Y-%m-%dT%H%M')}-s{options.scenarios.replace(',', '')}{suffix}"
    path = _unused(out, stem)
    path.write_text(text)
    progress(f"written {path}")
    return 130 if interrupted else 0


def _unused(directory: Path, stem: str) -> Path:
    """`stem`.md in `directory`, or `stem`-2.md, -3, ...: two runs in one minute with one label keep both."""
    path, copy = directory / f"{stem}.md", 1
    while path.exists():
        copy += 1
        path = directory / f"{stem}-{copy}.md"
    return path


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
