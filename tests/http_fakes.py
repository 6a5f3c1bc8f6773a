"""Every fake HTTP peer of the tests: real servers on 127.0.0.1, each in a thread of the test process.

`LoopbackServer` is the one base: a `ThreadingHTTPServer` serving in a daemon thread, counting the
connections it accepts, stopped by `stop()` (or leaving a `with` block). The fakes:

- `StubAgent` (fixture `stub_agent`): answers every POST with one scripted status and body;
- `FakeAgent`: answers each execution with a function, counts calls and overlapping calls;
- `SlowAgent`: answers after a delay and records how many calls it held at once;
- `Receiver` (fixture `receiver`): a webhook receiver that answers from a script, may hold requests;
- `RawServer` (fixture `raw_server`): raw sockets, for answers no HTTP library would write;
- `fake_llm`: the batch example's OpenAI stand-in (examples/batch/fake_llm.py).

tests/conftest.py makes the fixtures available to every test package.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import socketserver
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.processes import ROOT, free_port


def serve_in_thread(server: socketserver.BaseServer) -> Callable[[], None]:
    """Serve `server` in a daemon thread; returns the function that stops and closes it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Dispatchers open dozens of connections at once; the default backlog of 5 would make the
    # kernel reset some of them, and each reset costs the execution a retry.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], handler: type, fake: LoopbackServer) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def verify_request(self, request, client_address) -> bool:
        with self.fake.lock:
            self.fake.connections += 1
        return True


class LoopbackServer:
    """A real `ThreadingHTTPServer` on 127.0.0.1 (a free port unless given) in a daemon thread.

    Subclasses set `handler`, whose instances reach their fake as `self.server.fake`."""

    handler: type[socketserver.BaseRequestHandler]

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.lock = threading.Lock()
        self.server = _Server((host, port), self.handler, self)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host, self.port = self.server.server_address[:2]
        self.origin = f"{self.scheme}://{self.host}:{self.port}"
        self._stop = serve_in_thread(self.server)

    def stop(self) -> None:
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _HTTPHandler(http.server.BaseHTTPRequestHandler):
    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in ({"Content-Type": "application/json"} if headers is None else headers).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


# --- agents -------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _StubHandler(_HTTPHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        agent: StubAgent = self.server.fake
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        agent.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
        self.send(agent.status, agent.raw if agent.raw is not None else json.dumps(agent.body).encode())


class StubAgent(LoopbackServer):
    """Answers every request with `status` and `body` (or the bytes `raw`); `requests` holds what it received."""

    handler = _StubHandler

    def __init__(self) -> None:
        self.status = 202
        self.body: Any = {"status": "processing"}
        self.raw: bytes | None = None
        self.requests: list[Recorded] = []
        super().__init__()
        self.url = self.origin


@pytest.fixture
def stub_agent() -> Iterator[StubAgent]:
    """A `StubAgent`, stopped when the test ends."""
    with StubAgent() as agent:
        yield agent


Answer = Callable[[str, dict], tuple[int, Any]]


class _FakeAgentHandler(_HTTPHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.read_body() or b"{}")
        status, payload = self.server.fake.serve(self.headers.get("X-Execution-ID", ""), body)
        self.send(status, json.dumps(payload).encode())


class FakeAgent(LoopbackServer):
    """Answers POST /reasoners/<name> with `answer(execution_id, body)`; counts every call."""

    handler = _FakeAgentHandler

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda execution_id, body: (200, {"ok": True, "input": body}))
        self.calls: Counter[str] = Counter()
        self.overlaps = 0  # a call for an execution that was already being served
        self._serving: set[str] = set()
        super().__init__()
        self.url = self.origin

    def serve(self, execution_id: str, body: dict) -> tuple[int, Any]:
        with self.lock:
            self.calls[execution_id] += 1
            if execution_id in self._serving:
                self.overlaps += 1
            self._serving.add(execution_id)
        try:
            return self.answer(execution_id, body)
        finally:
            with self.lock:
                self._serving.discard(execution_id)

    def register(self, node_id: str = "fake", reasoners: tuple[str, ...] = ("work",)):
        """Register as a node whose heartbeat stays fresh for the whole test."""
        from django.utils import timezone

        from tests.factories import make_node

        now = timezone.now()
        return make_node(
            node_id,
            base_url=self.url,
            reasoners=reasoners,
            skills=(),
            instance_id="fake-instance",
            registered_at=now,
            last_heartbeat_at=now + timedelta(hours=1),
        )


class _SlowHandler(_HTTPHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        agent: SlowAgent = self.server.fake
        self.read_body()
        with agent.lock:
            agent.active += 1
            agent.calls += 1
            agent.peak = max(agent.peak, agent.active)
        time.sleep(agent.delay)
        with agent.lock:
            agent.active -= 1
        self.send(200, json.dumps({"done": True}).encode())


class SlowAgent(LoopbackServer):
    """Answers every dispatch after `delay` seconds and records how many it held at once (`peak`)."""

    handler = _SlowHandler

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.active = self.peak = self.calls = 0
        super().__init__()
        self.url = self.origin


# --- webhook receivers --------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class _ReceiverHandler(_HTTPHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.fake.handle(self, self.read_body())


class Receiver(LoopbackServer):
    """A webhook receiver. `script(path, 500, 500, 200)` sets the answers in order (then 200); an
    answer may be `(status, {header: value})`; `hold(path)` keeps a request open until `release()`."""

    handler = _ReceiverHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, list] = {}
        self._held: set[str] = set()
        self.holding = threading.Event()
        self.released = threading.Event()
        super().__init__(host, port, tls)

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def script(self, path: str, *answers) -> None:
        self._answers[path] = list(answers)

    def hold(self, path: str) -> None:
        self._held.add(path)

    def release(self) -> None:
        self.released.set()

    def bodies(self, path: str | None = None) -> list[bytes]:
        return [item.body for item in self.received if path is None or item.path == path]

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def handle(self, handler: _HTTPHandler, body: bytes) -> None:
        with self.lock:
            self.received.append(Received(handler.path, dict(handler.headers.items()), body))
            answers = self._answers.get(handler.path)
            answer = answers.pop(0) if answers else 200
        if handler.path in self._held and not self.released.is_set():
            self.holding.set()
            self.released.wait(60)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        payload = b'{"ok": true}' if 200 <= status < 300 else b"nope"
        try:
            handler.send(status, payload, headers)
        except OSError:
            pass  # the sender hung up (a killed worker)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A live receiver on 127.0.0.1 (answers 200 unless scripted), stopped when the test ends."""
    with Receiver() as server:
        yield server


# --- raw sockets --------------------------------------------------------------------------------

Script = Callable[[socket.socket, bytes], bool]  # answer one request; a false value closes the connection


def header_lines(head: bytes) -> list[tuple[str, str]]:
    """The (lower-cased name, value) pairs of a request or response head."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]


def answer(status: int, body: bytes, extra: str = "") -> Script:
    """A script that answers `status` and `body` (plus `extra` header lines) and keeps the
    connection unless `extra` closes it."""

    def script(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        return "Connection: close" not in extra

    return script


class _RawHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            self.serve(self.server.fake, self.request)
        except OSError:
            pass  # the client hung up (a test's timeout)

    def serve(self, fake: RawServer, conn: socket.socket) -> None:
        conn.settimeout(5)
        buffer = b""
        while not fake.stopped.is_set():
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffer += chunk
            head, sep, rest = buffer.partition(b"\r\n\r\n")
            if not sep:
                continue
            length = int(dict(header_lines(head)).get("content-length", "0"))
            if len(rest) < length:
                continue
            request, buffer = head + sep + rest[:length], rest[length:]
            fake.requests.append(request)
            if not fake.script(conn, request):
                return


class RawServer(LoopbackServer):
    """Reads each whole request off the socket and lets `script(conn, request)` write the answer
    bytes itself; `requests` holds the raw requests."""

    handler = _RawHandler

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        super().__init__()
        self.url = self.origin

    def stop(self) -> None:
        self.stopped.set()
        super().stop()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Script], RawServer]]:
    """`raw_server(script)` starts a `RawServer`; every one is stopped when the test ends."""
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


# --- a model ------------------------------------------------------------------------------------


def load_fake_llm():
    spec = importlib.util.spec_from_file_location("fake_llm", ROOT / "examples" / "batch" / "fake_llm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_llm(tmp_path):
    """The example's OpenAI stand-in on a loopback port, slowed down so the run can be killed mid-way."""
    trace = tmp_path / "llm-trace.jsonl"
    server = load_fake_llm().FakeLLMServer(free_port(), trace=trace, delay=0.1)
    stop = serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", trace
    stop()
