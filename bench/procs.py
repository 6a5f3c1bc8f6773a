"""Child processes of a benchmark: each in its own group, output to a log, stopped by pid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report import progress
from tests import processes
from tests.processes import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(tempfile.gettempdir()) / "agentfield-bench-logs"


def env_for(
    database_url: str | None = None, settings_module: str = "agentfield_project.settings", **extra: Any
) -> dict:
    """The environment of a child: our settings (or a peer's), DATABASE_URL, no inherited AGENTFIELD_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGENTFIELD_")}
    env.update({"DJANGO_SETTINGS_MODULE": settings_module, "PYTHONUNBUFFERED": "1", "AGENTFIELD_LOG_LEVEL": "WARNING"})
    env["AGENTFIELD_AGENT_ALLOWED_CIDRS"] = "127.0.0.0/8"  # the bench's agents listen on loopback
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update({key: str(value) for key, value in extra.items()})
    return env


class Process(processes.Process):
    """A test-suite child process (own group, log file) with the bench's log folder and extras."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        if cwd == ROOT:
            super().__init__(name, args, env, LOG_DIR)
            return
        # Another checkout (a before/after run): `python -m daphne` and manage.py import the
        # project from the working directory, so the child must start there.
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOG_DIR / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout=timeout)

    def output(self, tail: int = 4000) -> str:
        return super().output()[-tail:]

    def rss_kib(self) -> int:
        """Resident set size of the process (not its children), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time of a live process (all its threads), or of its `thread` (a thread id;
    the main thread's is the pid), from /proc; 0 once it is gone."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        fields = Path(path).read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(dbname: str | None = None) -> float:
    """CPU time of every `postgres` process on this machine (0 when the server runs elsewhere).

    With `dbname`, only the backends connected to that database (their title names it): work of
    other databases on a shared machine is left out. Backends that exit while measuring take their
    time with them, so measure across the life of the connections that matter (pooled ones stay).
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                if dbname and f" {dbname} ".encode() not in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    continue
                total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


@dataclass
class Watched:
    seconds: float
    polls: int  # each poll is one committed (read-only) transaction in the measured database


def watch(children: list[Process], done: Callable[[], int], total: int, label: str, timeout: float = 1800) -> Watched:
    """Wait until every child has exited (or `done()` reaches `total`), printing progress."""
    began = last_report = time.perf_counter()
    polls = 0
    while any(child.alive() for child in children):
        polls += 1
        if done() >= total:
            break
        now = time.perf_counter()
        if now - began > timeout:
            raise TimeoutError(f"{label}: not done after {timeout:.0f}s")
        if now - last_report >= 5:
            count = done()
            progress(f"  {label}: {count:,}/{total:,} done ({count / (now - began):,.0f}/s so far)")
            last_report = now
        time.sleep(0.2)
    return Watched(time.perf_counter() - began, polls)


def run(args: list[str], env: dict[str, str], timeout: float = 600.0, cwd: Path = ROOT) -> str:
    """Run a command to completion (in `cwd`, this checkout by default); raise with its output if it fails."""
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout


def manage(database_url: str, *args: str, cwd: Path = ROOT) -> str:
    """`manage.py ARGS` of the checkout in `cwd` against `database_url`; its stdout."""
    return run([sys.executable, "manage.py", *args], env_for(database_url), cwd=cwd)


class StubAgent:
    """The minimal agent (bench/stub_agent.py) on a free loopback port."""

    def __init__(self, status: int = 200) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "bench.stub_agent", "--port", str(self.port), "--status", str(status)]
        self.process = Process("stub-agent", args, env_for())
        wait_until(self._up, 15, message="the stub agent")

    def _up(self) -> bool:
        if not self.process.alive():
            raise RuntimeError(f"stub agent exited:\n{self.process.output()}")
        try:
            return self.stats()["count"] >= 0
        except OSError:
            return False

    def stats(self, times: bool = False) -> dict:
        """{'count': requests so far, 'times': {execution id: unix time received}} (times on request)."""
        query = "?times=1" if times else ""
        with urllib.request.urlopen(f"{self.url}/_stats{query}", timeout=10) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).read()

    def stop(self) -> None:
        self.process.stop()
