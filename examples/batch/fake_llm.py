"""A local OpenAI-compatible stand-in for `app.ai`: deterministic summaries, no network, no key.

    python examples/batch/fake_llm.py --port 8099 [--trace trace.jsonl] [--delay 0.2]

POST /v1/chat/completions (or /chat/completions) answers a standard chat completion whose text is
`SUMMARY[<sha256 of the user text, 8 hex>]: <first 60 characters>`. With --trace, every request
appends one JSON line `{"user": ..., "summary": ...}` (so a test can count which items were
summarised, and how often). --delay sleeps before answering, to make a batch slow enough to kill.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def summarise(text: str) -> str:
    """The deterministic 'summary' of a document."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"SUMMARY[{digest}]: {text[:60]}"


def completion(request: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion for an OpenAI request body, summarising its last user message."""
    users = [m.get("content") for m in request.get("messages", []) if m.get("role") == "user"]
    text = users[-1] if users else ""
    if isinstance(text, list):  # content parts: keep the text ones
        text = " ".join(part.get("text", "") for part in text if isinstance(part, dict))
    summary = summarise(str(text))
    return {
        "id": f"chatcmpl-{hashlib.sha256(summary.encode()).hexdigest()[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake-llm"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": summary}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(str(text).split()), "completion_tokens": 12, "total_tokens": 12},
    }


class Handler(BaseHTTPRequestHandler):
    server: FakeLLMServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        except ValueError:
            return self._send(400, {"error": {"message": "malformed JSON"}})
        if self.server.delay:
            time.sleep(self.server.delay)
        body = completion(request)
        self.server.record(request, body["choices"][0]["message"]["content"])
        self._send(200, body)

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, {"object": "list", "data": [{"id": "fake-llm", "object": "model"}]})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class FakeLLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, trace: Path | None = None, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.trace, self.delay = trace, delay
        self._lock = threading.Lock()

    def record(self, request: dict[str, Any], summary: str) -> None:
        if self.trace is None:
            return
        users = [m.get("content") for m in request.get("messages", []) if m.get("role") == "user"]
        line = json.dumps({"user": users[-1] if users else None, "summary": summary})
        with self._lock, self.trace.open("a") as trace:
            trace.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible fake LLM for the batch example")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--trace", type=Path, help="append one JSON line per completion to this file")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to sleep before each answer")
    args = parser.parse_args()
    server = FakeLLMServer(args.port, args.trace, args.delay)
    print(f"fake LLM on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
