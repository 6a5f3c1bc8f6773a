"""Many HTTP requests held open at once (synchronous executes, event streams) from one asyncio loop.

A thread per open request would make the harness itself the bottleneck at a thousand streams on
two cores; one event loop in a background thread holds them all for the cost of their sockets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections import Counter
from typing import Any

# daphne (Twisted) listens with a backlog of 50: connect in waves so no SYN is dropped and
# retried a second later, which would measure the kernel's back-off instead of the server.
CONNECTING_AT_ONCE = 50


def _request(method: str, path: str, headers: dict[str, str], body: Any, close: bool) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Connection: close"] if close else []
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


class Crowd:
    """An event loop thread holding requests to 127.0.0.1:`port`; outcomes are HTTP statuses or error names."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="crowd")
        self._thread.start()
        self._gate: asyncio.Semaphore | None = None
        self._streams: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task] = set()
        self.answered = 0  # requests of `send` that have ended (answered, failed or timed out)

    def _submit(self, coroutine) -> concurrent.futures.Future:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def send(self, method: str, path: str, body: Any, count: int, timeout: float) -> concurrent.futures.Future:
        """Start `count` identical requests at once; the future's result is each one's outcome."""

        async def all_of() -> list[int | str]:
            return await asyncio.gather(*(self._exchange(method, path, body, timeout) for _ in range(count)))

        return self._submit(all_of())

    def open_streams(self, path: str, count: int, timeout: float) -> list[int | str]:
        """Open `count` event streams and read each one's `connected` frame; 200 for each that did."""

        async def all_of() -> list[int | str]:
            return await asyncio.gather(*(self._stream(path, timeout) for _ in range(count)))

        return self._submit(all_of()).result(timeout + 30)

    async def _connect(self, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self._gate = self._gate or asyncio.Semaphore(CONNECTING_AT_ONCE)
        async with self._gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(request)
            await writer.drain()
        return reader, writer

    async def _exchange(self, method: str, path: str, body: Any, timeout: float) -> int | str:
        writer = None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await self._connect(_request(method, path, self.headers, body, close=True))
                status = _status(await reader.readuntil(b"\r\n\r\n"))
                await reader.read()  # the body, up to the server's close
                return status
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            return type(error).__name__
        finally:
            self.answered += 1
            if writer is not None:
                writer.close()

    async def _stream(self, path: str, timeout: float) -> int | str:
        writer = None
        try:
            async with asyncio.timeout(timeout):
                headers = self.headers | {"Accept": "text/event-stream"}
                reader, writer = await self._connect(_request("GET", path, headers, None, close=False))
                status = _status(await reader.readuntil(b"\r\n\r\n"))
                if status != 200:
                    writer.close()
                    return status
                seen = b""
                while b'"connected"' not in seen:
                    chunk = await reader.read(4096)
                    if not chunk:
                        return "closed before connected"
                    seen += chunk
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
            if writer is not None:
                writer.close()
            return type(error).__name__
        # Keep reading (and dropping) what the stream sends, as a browser would, so the server's
        # back-pressure never pauses it on our account.
        self._streams.append(writer)
        task = asyncio.create_task(self._drain(reader))
        self._tasks.add(task)
        return 200

    async def _drain(self, reader: asyncio.StreamReader) -> None:
        try:
            while await reader.read(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        """Close every open stream and stop the loop."""

        async def close_all() -> None:
            for writer in self._streams:
                writer.close()
            for task in self._tasks:
                task.cancel()
            self._streams.clear()

        self._submit(close_all()).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def tally(outcomes: list[int | str]) -> str:
    """'200 ×998, TimeoutError ×2' (most common first)."""
    return ", ".join(f"{outcome} ×{count}" for outcome, count in Counter(outcomes).most_common())
