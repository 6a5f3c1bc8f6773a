"""A real webhook receiver on loopback: records every request and answers from a script."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)


class Receiver:
    """`ThreadingHTTPServer` in a thread. `script(path, 500, 500, 200)` sets the answers in order
    (then 200); an answer may be `(status, {header: value})`; `hold(path)` keeps a request open
    until `release()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.connections = 0
        self._answers: dict[str, list] = {}
        self._held: set[str] = set()
        self.holding = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._handle(self, body)

            def log_message(self, *args) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                with receiver._lock:
                    receiver.connections += 1
                return True

        self.server = Server((host, port), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

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
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            self.received.append(Received(handler.path, dict(handler.headers.items()), body))
            answers = self._answers.get(handler.path)
            answer = answers.pop(0) if answers else 200
        if handler.path in self._held and not self.released.is_set():
            self.holding.set()
            self.released.wait(60)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        payload = b'{"ok": true}' if 200 <= status < 300 else b"nope"
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the sender hung up (a killed worker)
