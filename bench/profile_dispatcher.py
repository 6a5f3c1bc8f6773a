"""`python -m bench.profile_dispatcher`: py-spy a `run_dispatcher` draining a backlog; print hot paths.

Writes the raw folded stacks (feed them to flamegraph.pl or speedscope) next to a summary of the
functions the dispatcher's loop thread spends its samples in.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import ours, pg
from bench.report import progress


def summarise(folded: Path, top: int = 25) -> str:
    """Inclusive sample counts per function of the main (loop) thread, and per thread."""
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        threads[frames[0].split(": ", 1)[-1]] += int(count)
        if "MainThread" not in frames[0]:
            continue
        total += int(count)
        for name in dict.fromkeys(
            frame.split(" (")[0] + " (" + frame.split("(")[-1].split(":")[0] + ")" for frame in frames[1:]
        ):
            inclusive[name] += int(count)
    lines = [f"main thread: {total} samples"]
    lines += [f"{count:6d} {count / max(total, 1):6.1%}  {name}" for name, count in inclusive.most_common(top)]
    lines += ["", "samples per thread:"] + [f"{count:6d}  {name}" for name, count in threads.most_common(8)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_dispatcher", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--output", default="/tmp/dispatcher-profile.txt")
    options = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    bench = ours.Bench.start(pg.server())
    try:
        bench.reset()
        bench.enqueue(options.jobs)
        dispatcher = bench.start_dispatcher()
        time.sleep(3)  # past start-up: profile the steady state
        progress(f"profiling dispatcher pid {dispatcher.pid} for {options.seconds}s")
        args = [
            py_spy,
            "record",
            "-p",
            str(dispatcher.pid),
            "-d",
            str(options.seconds),
            "-r",
            "100",
            "-f",
            "raw",
            "--threads",
        ]
        subprocess.run([*args, "-o", options.output], check=True, capture_output=True)
        progress(f"{bench.count():,} executions done; folded stacks in {options.output}")
        print(summarise(Path(options.output)))
    finally:
        bench.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
