"""A tiny real HTTP agent on 127.0.0.1 that answers what a test tells it to and records requests.

The `stub_agent` fixture is shared by every test package (tests/conftest.py imports it)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubAgent:
    """Answers every request with `status` and `body`; `requests` holds what it received."""

    url: str = ""
    status: int = 202
    body: Any = field(default_factory=lambda: {"status": "processing"})
    raw: bytes | None = None
    requests: list[Recorded] = field(default_factory=list)


def _handler(agent: StubAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            agent.requests.append(Recorded("POST", self.path, dict(self.headers.items()), body))
            payload = agent.raw if agent.raw is not None else json.dumps(agent.body).encode()
            self.send_response(agent.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stub_agent():
    """A real HTTP server in a thread, stopped when the test ends."""
    agent = StubAgent()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agent))
    server.daemon_threads = True
    agent.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield agent
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
