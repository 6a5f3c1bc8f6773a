"""Behind PgBouncer: what the README claims, tried with Debian's pgbouncer in front of a throwaway server.

- session pooling: everything works unchanged;
- transaction pooling: the API, the queue and webhooks work; LISTEN does not survive it, so the
  LISTEN connections go around the pooler with AGENTFIELD_LISTEN_DATABASE_URL.
`.ci/run` installs pgbouncer (like Chromium) when it is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import free_port, http, wait_until

pytestmark = pytest.mark.e2e

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """pgbouncer on 127.0.0.1:`port` in `mode`, in front of the throwaway PostgreSQL."""

    def __init__(self, backend_port: int, mode: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="agentfield-pgbouncer-"))
        self.port = free_port()
        (self.root / "users.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={backend_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\n"
            f"pool_mode = {mode}\n"
            # Django sends `options` (session settings); a pooler cannot keep per-client settings.
            "ignore_startup_parameters = extra_float_digits,options\n"
            # In session mode each client connection holds a server connection for its life: the
            # pool must hold them all (the server's up to 16 + 2 loop + 2 LISTEN, the dispatcher's 2).
            # At 20 a busy moment left the server's last pooled connection waiting in PgBouncer.
            "max_client_conn = 500\ndefault_pool_size = 40\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n"
        )
        os.chmod(self.root, 0o755)  # noqa: S103 - pgbouncer runs as another user when we are root
        user = ["-u", "postgres"] if os.geteuid() == 0 else []
        if user:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, *self.root.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run([PGBOUNCER, "-d", *user, str(self.root / "pgbouncer.ini")], check=True, timeout=30)
        wait_until(lambda: (self.root / "pgbouncer.pid").exists(), timeout=10, message="pgbouncer to start")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        pid_file = self.root / "pgbouncer.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(params=["session", "transaction"])
def pooled(request, faulty_db, log_dir):
    """Processes whose DATABASE_URL goes through pgbouncer in session or in transaction mode."""
    from tests.conftest import Launcher

    bouncer = PgBouncer(faulty_db.port, request.param)
    launcher = Launcher(bouncer.url(faulty_db.database), log_dir)
    settings = {}
    if request.param == "transaction":
        settings["AGENTFIELD_LISTEN_DATABASE_URL"] = faulty_db.db_url
    yield launcher, settings
    launcher.stop_all(show_logs=request.node.rep_call.failed if hasattr(request.node, "rep_call") else False)
    bouncer.stop()


def test_the_control_plane_runs_behind_pgbouncer(pooled, receiver):
    launch, settings = pooled
    url = launch.server(**settings)
    launch.dispatcher(**settings)
    launch.agent("echo_agent.py", url, NODE_ID="echo")
    wait_until(lambda: http("GET", f"{url}/api/v1/nodes/echo")[0] == 200, timeout=60, message="registration")
    wait_until(lambda: http("GET", f"{url}/api/v1/nodes/echo")[1]["health_status"] == "active", timeout=30)

    hook = {"url": receiver.url(), "secret": "whsec_pooled"}
    ids = []
    for n in range(20):
        body = {"input": {"message": f"m{n}"}, "webhook": hook}
        status, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.echo", body)
        assert status == 202, accepted
        ids.append(accepted["execution_id"])
    # The synchronous route waits on the event hub: it needs LISTEN to work.
    status, done, _ = http("POST", f"{url}/api/v1/execute/echo.echo", {"input": {"message": "sync"}}, timeout=60)
    assert status == 200 and done["result"]["echo"] == "sync", done

    def finished() -> dict | None:
        found = http("POST", f"{url}/api/v1/executions/batch-status", {"execution_ids": ids})[1]
        return found if all(item["status"] == "succeeded" for item in found.values()) else None

    wait_until(finished, timeout=60, message="every execution to succeed")
    wait_until(lambda: len(receiver.received) >= len(ids), timeout=60, message="every webhook")
    for process in launch.started:
        assert "prepared statement" not in process.output()
