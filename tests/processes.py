"""Real processes for end-to-end tests: daphne, dispatchers and SDK agents, all on 127.0.0.1.

Every process is started in its own process group and killed when the test ends; every wait
is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from agentfield_project.runtime.server import daphne_command, endpoint

ROOT = Path(__file__).resolve().parent.parent
AGENTS = Path(__file__).resolve().parent / "agents"
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for subprocesses that points at the database the tests use."""
    user = quote(settings_dict.get("USER") or "postgres")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host", "")
    name = settings_dict["NAME"]
    if host.startswith("/"):
        return f"postgresql://{auth}/{name}?host={host}"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{name}"


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, message: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0):
    """A tiny JSON HTTP client: returns (status, parsed body or raw text, headers)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, response_headers = error.code, error.read(), error.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed, response_headers


class Process:
    """A child process in its own group, with its output captured to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.popen.returncode

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


def base_env(db_url: str, **settings: Any) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AGENTFIELD_", "PYTEST_"))}
    env.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SETTINGS_MODULE": "agentfield_project.settings",
            "PYTHONUNBUFFERED": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "AGENTFIELD_WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32",
            "AGENTFIELD_AGENT_ALLOWED_CIDRS": "127.0.0.0/8",
        }
    )
    env.update({key: str(value) for key, value in settings.items()})
    return env


def start_server(db_url: str, log_dir: Path, **settings: Any) -> tuple[Process, str]:
    """daphne on a free loopback port; returns the process and its base URL once healthy."""
    port = free_port()
    args = daphne_command("-e", endpoint("127.0.0.1", port))
    settings.setdefault("AGENTFIELD_CALLBACK_SPOOL_DIR", log_dir.parent / "spool")
    process = Process("daphne", args, base_env(db_url, **settings), log_dir)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise AssertionError(f"daphne exited:\n{process.output()}")
        try:
            return http("GET", f"{url}/api/v1/health", timeout=1)[0] == 200
        except OSError:
            return False

    wait_until(healthy, timeout=30, message="daphne to answer /api/v1/health")
    return process, url


def start_dispatcher(db_url: str, log_dir: Path, *extra: str, **settings: Any) -> Process:
    args = [sys.executable, "manage.py", "run_dispatcher", *extra]
    return Process("dispatcher", args, base_env(db_url, **settings), log_dir)


def start_agent(script: str, server_url: str, log_dir: Path, port: int | None = None, **env: Any) -> Process:
    """Run tests/agents/<script> (a real `agentfield` SDK agent) against `server_url`."""
    agent_env = base_env("", AGENTFIELD_SERVER=server_url, PORT=port or free_port(), AGENTFIELD_STRICT_PORT="1")
    agent_env.pop("DATABASE_URL")
    agent_env.update({key: str(value) for key, value in env.items()})
    return Process(Path(script).stem, [sys.executable, str(AGENTS / script)], agent_env, log_dir)
