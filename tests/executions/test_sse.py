"""The lifecycle event stream against a real daphne server, with events written by another process."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from executions import events
from executions.models import ExecutionEvent
from nodes import policy
from nodes.auth import issue_key
from tests.processes import ROOT, base_env, http, wait_until
from tests.sse_client import Stream

pytestmark = pytest.mark.e2e

RESERVE_ONE_ID = """
INSERT INTO executions_eventcounter (id, value) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET value = executions_eventcounter.value + 1 RETURNING value
"""


def write(db_url: str, *commands: tuple[str, ...]) -> list[int]:
    """Run the event writer in its own process; returns the ids of the events it committed."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.executions.event_writer", json.dumps(commands)],
        cwd=ROOT,
        env=base_env(db_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return [int(line) for line in done.stdout.split()]


def session_cookie(username: str = "staff", is_staff: bool = True) -> dict[str, str]:
    user = User.objects.create_user(username, password="unused-password", is_staff=is_staff)
    client = Client()
    client.force_login(user)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


def subscribers(url: str, cookie: dict[str, str]) -> int:
    status, body, _ = http("GET", f"{url}/api/ui/v1/executions/events/stats", headers=cookie)
    assert status == 200, body
    return body["subscribers"]


@pytest.fixture
def staff(db_url) -> dict[str, str]:
    return session_cookie()


def test_the_stream_follows_the_apis_rule_open_until_a_key_exists(launch, db_url):
    url = launch.server()
    with Stream(url) as anonymous:  # no key exists yet: open, like every API route
        assert anonymous.status == 200 and anonymous.next_frame().type == "connected"
    _, client_key = issue_key("client", policy.CLIENT)
    wait_until(lambda: http("GET", f"{url}/api/ui/v1/executions/events/stats")[0] == 401, timeout=15)
    status, body, _ = http("GET", f"{url}/api/ui/v1/executions/events")
    assert status == 401 and body["code"] == "not_authenticated"
    status, body, _ = http("GET", f"{url}/api/ui/v1/executions/events", headers=session_cookie("user", False))
    assert status == 401 and body["code"] == "not_authenticated"  # a session counts only for staff
    status, body, _ = http("GET", f"{url}/api/ui/v1/executions/events", headers={"X-API-Key": client_key})
    assert status == 403 and body["code"] == "permission_denied"  # every execution: admins and staff only


def test_one_key_holds_at_most_its_cap_of_streams_and_a_closed_one_frees_its_place(launch, db_url):
    _, key = issue_key("watcher", policy.ADMIN)
    _, other = issue_key("other", policy.ADMIN)
    url = launch.server(AGENTFIELD_MAX_STREAMS_PER_KEY=2, AGENTFIELD_SSE_HEARTBEAT_SECONDS=1)
    headers = {"X-API-Key": key}
    first, second = Stream(url, headers=headers), Stream(url, headers=headers)
    try:
        assert (first.status, second.status) == (200, 200)
        status, body, answer_headers = http("GET", f"{url}/api/ui/v1/executions/events", headers=headers)
        assert status == 429 and body["code"] == "throttled" and "AGENTFIELD_MAX_STREAMS_PER_KEY" in body["error"]
        assert int(answer_headers["Retry-After"]) >= 1
        with Stream(url, headers={"X-API-Key": other}) as another_key:
            assert another_key.status == 200
        first.close()  # the server notices at its next heartbeat and gives the place back

        def reopened() -> bool:
            stream = Stream(url, headers=headers)
            stream.close()
            return stream.status == 200

        wait_until(reopened, timeout=30)
    finally:
        first.close()
        second.close()


def test_lifecycle_frames_from_another_process_arrive_in_order(launch, db_url, staff):
    url = launch.server()
    with Stream(url, headers=staff) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["Cache-Control"] == "no-cache"
        assert stream.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in stream.headers
        (connected,) = stream.frames(1)
        assert connected.type == "connected" and connected.id is None and connected.lines[0].startswith("data: ")

        ids = write(
            db_url,
            ("create", "exec_a", "echo.echo"),
            ("create", "exec_b", "echo.shout"),
            ("complete", "exec_a"),
            ("fail", "exec_b", "boom\n\nevent: x\ndata: y"),
        )
        frames = stream.frames(4)

    assert [frame.id for frame in frames] == ids == sorted(ids)
    assert [(frame.type, frame.data["execution_id"], frame.data["status"]) for frame in frames] == [
        ("execution_queued", "exec_a", "queued"),
        ("execution_queued", "exec_b", "queued"),
        ("execution_completed", "exec_a", "succeeded"),
        ("execution_failed", "exec_b", "failed"),
    ]
    first = frames[0].data
    assert first["workflow_id"] == first["run_id"] == "run_exec_a"
    assert first["agent_node_id"] == "echo" and first["target"] == "echo.echo"
    assert first["timestamp"].endswith("Z")


def test_resume_replays_exactly_the_missed_events_then_goes_live(launch, db_url, staff):
    url = launch.server()
    write(db_url, ("create", "exec_old"))
    with Stream(url, headers=staff) as stream:
        stream.frames(1)
        seen = write(db_url, ("create", "exec_1"), ("create", "exec_2"))
        assert [frame.id for frame in stream.frames(2)] == seen
    missed = write(db_url, ("complete", "exec_1"), ("create", "exec_3"), ("complete", "exec_2"))

    with Stream(url, headers={**staff, "Last-Event-ID": str(seen[-1])}) as stream:
        connected, *replayed = stream.frames(4)
        assert connected.type == "connected" and connected.data["last_event_id"] == seen[-1]
        assert [frame.id for frame in replayed] == missed
        live = write(db_url, ("complete", "exec_3"))
        (frame,) = stream.frames(1)
        assert frame.id == live[0] and frame.data["execution_id"] == "exec_3"

    with Stream(url, query=f"last_event_id={missed[0]}", headers=staff) as stream:
        assert [frame.id for frame in stream.frames(4)[1:]] == missed[1:] + live


def test_bad_last_event_id_is_a_400(launch, db_url, staff):
    url = launch.server()
    for value in ["abc", "-1", "1e9999", "9223372036854775808", str(2**64), "5, 6", "0x10", "+5"]:
        with Stream(url, headers={**staff, "Last-Event-ID": value}) as stream:
            assert stream.status == 400, value
            assert "Last-Event-ID" in stream.json()["error"]
        with Stream(url, query=f"last_event_id={quote(value)}", headers=staff) as stream:
            assert stream.status == 400, value
    with Stream(url, headers={**staff, "Last-Event-ID": str(2**63 - 1)}) as stream:
        assert stream.status == 200 and stream.frames(1)[0].data["last_event_id"] == 2**63 - 1


def test_filters_keep_only_the_matching_execution(launch, db_url, staff):
    url = launch.server()
    with (
        Stream(url, query="execution_id=exec_b", headers=staff) as by_id,
        Stream(url, query="target=echo.shout", headers=staff) as by_target,
        Stream(url, query="run_id=run_exec_a", headers=staff) as by_run,
    ):
        for stream in (by_id, by_target, by_run):
            stream.frames(1)
        write(
            db_url,
            ("create", "exec_a", "echo.echo"),
            ("create", "exec_b", "echo.shout"),
            ("complete", "exec_a"),
            ("complete", "exec_b"),
        )
        assert [f.type for f in by_id.frames(2)] == ["execution_queued", "execution_completed"]
        assert {f.data["execution_id"] for f in by_target.frames(2)} == {"exec_b"}
        assert {f.data["execution_id"] for f in by_run.frames(2)} == {"exec_a"}


def test_disconnected_clients_leave_no_subscription_behind(launch, db_url, staff):
    url = launch.server()
    streams = [Stream(url, headers=staff) for _ in range(3)]
    for stream in streams:
        stream.frames(1)
    assert subscribers(url, staff) == 3
    for stream in streams:
        stream.close()
    wait_until(lambda: subscribers(url, staff) == 0, timeout=10, message="subscriptions to end")


def test_heartbeats_arrive_while_idle(launch, db_url, staff):
    url = launch.server(AGENTFIELD_SSE_HEARTBEAT_SECONDS=0.2)
    with Stream(url, headers=staff) as stream:
        connected, *beats = stream.frames(4, skip_heartbeats=False)
    assert connected.data["heartbeat_seconds"] == 0.2
    assert [beat.type for beat in beats] == ["heartbeat"] * 3
    assert all(beat.id is None and beat.data["timestamp"].endswith("Z") for beat in beats)


def test_listener_reconnects_and_backfills_after_its_connection_is_killed(launch, db_url, staff):
    url = launch.server(AGENTFIELD_SSE_POLL_SECONDS=30)
    with Stream(url, headers=staff) as stream:
        stream.frames(1)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                ["agentfield-event-listener"],
            )
            assert cursor.fetchall() == [(True,)]
        ids = write(db_url, ("create", "exec_gap"))
        assert [frame.id for frame in stream.frames(1, timeout=20)] == ids
    assert "event listener: database unavailable" in launch.server_process.output()


def test_a_client_that_stops_reading_is_cut_off_and_resumes_from_the_table(launch, db_url, staff):
    url = launch.server(AGENTFIELD_SSE_CLIENT_QUEUE=5)
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that never reads
        slow.connect((host, int(port)))
        slow.sendall(
            f"GET /api/ui/v1/executions/events HTTP/1.1\r\nHost: {host}\r\n{cookie_line(staff)}\r\n\r\n".encode()
        )
        wait_until(lambda: subscribers(url, staff) == 1, timeout=10)
        ids = write(db_url, ("burst", "exec_big_", "120", str(64 * 1024)))
        wait_until(lambda: subscribers(url, staff) == 0, timeout=30, message="the unread stream to be ended")
        assert "fell 5 events behind" in launch.server_process.output()

        received = read_until_end(slow)
    delivered = [int(value) for value in re.findall(rb"\nid: (\d+)\n", b"\n" + received)]
    assert delivered == ids[: len(delivered)] and len(delivered) < len(ids)

    with Stream(url, headers={**staff, "Last-Event-ID": str(delivered[-1])}) as stream:
        rest = stream.frames(1 + len(ids) - len(delivered), timeout=30)[1:]
    assert [frame.id for frame in rest] == ids[len(delivered) :]


def cookie_line(headers: dict[str, str]) -> str:
    return "".join(f"{name}: {value}" for name, value in headers.items())


def read_until_end(sock: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the server sent, up to the chunked body's terminator."""
    sock.settimeout(timeout)
    received = b""
    while not received.endswith(b"\r\n0\r\n\r\n"):
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    return received


def test_an_event_whose_notification_was_lost_arrives_by_polling(launch, db_url, staff):
    url = launch.server(AGENTFIELD_SSE_POLL_SECONDS=0.3)
    with Stream(url, headers=staff) as stream:
        stream.frames(1)
        with transaction.atomic(), connection.cursor() as cursor:  # the row, but no pg_notify
            cursor.execute(RESERVE_ONE_ID)
            (event_id,) = cursor.fetchone()
            ExecutionEvent.objects.create(
                id=event_id, execution_id="exec_quiet", run_id="run_q", node_id="n", target="n.r",
                type=events.QUEUED, status="queued", created_at=timezone.now(),
            )  # fmt: skip
        (frame,) = stream.frames(1)
    assert (frame.id, frame.data["execution_id"]) == (event_id, "exec_quiet")
