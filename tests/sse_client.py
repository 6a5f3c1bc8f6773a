"""A small blocking SSE client for tests: reads frames from a real server, every read bounded."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

STREAM = "/api/ui/v1/executions/events"


@dataclass
class Frame:
    id: int | None
    data: dict[str, Any]
    retry: int | None
    lines: list[str]

    @property
    def type(self) -> str:
        return self.data.get("type", "")


class Stream:
    """One open GET of the event stream; `status`/`headers` as answered, frames read on demand."""

    def __init__(self, base_url: str, query: str = "", headers: dict[str, str] | None = None, timeout: float = 10.0):
        parts = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.connection.request("GET", STREAM + (f"?{query}" if query else ""), headers=headers or {})
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers

    def json(self) -> Any:
        return json.loads(self.response.read())

    def next_frame(self) -> Frame:
        """The next frame (blocks up to the socket timeout; raises on end of stream)."""
        lines: list[str] = []
        while True:
            raw = self.response.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\n")
            if line == "":
                if lines:
                    return parse(lines)
                continue
            lines.append(line)

    def frames(self, count: int, timeout: float = 15.0, skip_heartbeats: bool = True) -> list[Frame]:
        """Exactly `count` frames (heartbeats skipped unless asked for), within `timeout` seconds."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"got {len(found)} of {count} frames in {timeout}s: {found}")
            frame = self.next_frame()
            if skip_heartbeats and frame.type == "heartbeat":
                continue
            found.append(frame)
        return found

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse(lines: list[str]) -> Frame:
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value.removeprefix(" "))
    assert len(fields.get("data", [])) == 1, f"a frame carries exactly one data line: {lines}"
    event_id = int(fields["id"][0]) if "id" in fields else None
    retry = int(fields["retry"][0]) if "retry" in fields else None
    return Frame(event_id, json.loads(fields["data"][0]), retry, lines)
