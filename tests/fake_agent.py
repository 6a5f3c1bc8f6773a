"""An in-process HTTP agent on 127.0.0.1 for dispatcher tests that need full control of answers."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.utils import timezone

Answer = Callable[[str, dict], tuple[int, Any]]


class FakeAgent:
    """Answers POST /reasoners/<name> with `answer(execution_id, body)`; counts every call."""

    def __init__(self, answer: Answer | None = None) -> None:
        self.answer: Answer = answer or (lambda execution_id, body: (200, {"ok": True, "input": body}))
        self.calls: Counter[str] = Counter()
        self.overlaps = 0  # a call for an execution that was already being served
        self._serving: set[str] = set()
        self._lock = threading.Lock()
        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                execution_id = self.headers.get("X-Execution-ID", "")
                status, payload = agent._serve(execution_id, body)
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # Dispatchers open dozens of connections at once; the default backlog of 5 would make
            # the kernel reset some of them, and each reset costs the execution a retry.
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _serve(self, execution_id: str, body: dict) -> tuple[int, Any]:
        with self._lock:
            self.calls[execution_id] += 1
            if execution_id in self._serving:
                self.overlaps += 1
            self._serving.add(execution_id)
        try:
            return self.answer(execution_id, body)
        finally:
            with self._lock:
                self._serving.discard(execution_id)

    def __enter__(self) -> FakeAgent:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def register(self, node_id: str = "fake", reasoners: tuple[str, ...] = ("work",)):
        """Register as a node whose heartbeat stays fresh for the whole test."""
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
