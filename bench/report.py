"""Measurements as rows: median and spread of repeated samples, a Markdown table, progress lines."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass
class Row:
    """One line of the summary: a metric measured `len(samples)` times (or a reason it was not)."""

    scenario: str
    case: str
    metric: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""
    unavailable: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def spread(self) -> str:
        """min–max and the half-range relative to the median, e.g. '2,810–3,020 (±3.6%)'."""
        if len(self.samples) < 2 or not self.median:
            return "–"
        low, high = min(self.samples), max(self.samples)
        return f"{fmt(low)}–{fmt(high)} (±{(high - low) / 2 / self.median * 100:.1f}%)"


@dataclass(frozen=True)
class Drain:
    """One drain of a pre-filled backlog."""

    rate: float  # jobs/s from the first job started to the last one finished (the system's own clocks)
    wall_rate: float  # jobs/s from worker launch to done, start-up included
    commits_per_job: float  # committed transactions in the system's database per job (polling excluded)
    cpu_us_per_job: dict[str, float] = field(default_factory=dict)  # CPU µs per job by process


class Unavailable(Exception):
    """This scenario cannot run here; the message says why (shown in the table)."""


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


_started = time.monotonic()


def progress(message: str) -> None:
    """A timestamped progress line on stderr (stdout carries the summary)."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


def table(rows: list[Row]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| # | case | metric | median | min–max (spread) | n | notes |",
        "|---|---|---|---:|---|---:|---|",
    ]
    for row in rows:
        if row.unavailable:
            lines.append(f"| {row.scenario} | {row.case} | {row.metric} | not available | – | 0 | {row.unavailable} |")
            continue
        median = f"{fmt(row.median)} {row.unit}".strip()
        lines.append(
            f"| {row.scenario} | {row.case} | {row.metric} | {median} | {row.spread()} | {len(row.samples)} | {row.note} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Facts about the host the numbers came from."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load average (1/5/15 min) at start": " / ".join(f"{value:.2f}" for value in load),
        "CPU speed at start (fixed pure-Python loop, median of 7; lower is faster)": f"{calibration_ms():.1f} ms",
    }


def calibration_ms() -> float:
    """The time of one fixed pure-Python loop on this machine now.

    On a shared host the same code has measured 3.5x apart within the hour (scenario 3: 322 and
    1,145 executions/s, 2026-12-03), and the load average does not show it: this figure does, so
    results from different moments can be compared (or not).
    """
    times = []
    for _ in range(7):
        began = time.perf_counter()
        sum(index * index for index in range(200_000))
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def document(command: str, facts: dict[str, dict[str, str]], rows: list[Row], notes: list[str]) -> str:
    """The Markdown results file: the command first, then the environment, the table and notes."""
    parts = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
    ]
    for title, values in facts.items():
        parts += [f"## {title}", ""] + [f"- {key}: {value}" for key, value in values.items()] + [""]
    parts += ["## Results", "", table(rows), ""]
    if notes:
        parts += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(parts)
