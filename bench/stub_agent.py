"""The minimal agent: answers every request at once with 200 `{}` and remembers when it came.

Plain asyncio with HTTP/1.1 keep-alive so the stub costs as little as possible. `GET /_stats`
returns the request count (with `?times=1` the arrival time of each `X-Execution-ID`, with
`?counts=1` how many requests carried each one: a re-dispatch shows as a count above 1);
`POST /_reset` forgets everything. Also serves as a webhook receiver (any path, 200).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

COUNT = 0
FIRST = 0.0
TIMES: dict[str, float] = {}
COUNTS: dict[str, int] = {}


def _response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 202: "Accepted"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int) -> None:
    global COUNT, FIRST
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            received = time.time()
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            if target.startswith("/_stats"):
                body = {"count": COUNT, "first": FIRST, **({"times": TIMES} if "times=1" in target else {})}
                body |= {"counts": COUNTS} if "counts=1" in target else {}
                writer.write(_response(200, json.dumps(body).encode()))
            elif target.startswith("/_reset"):
                COUNT, FIRST = 0, 0.0
                TIMES.clear()
                COUNTS.clear()
                writer.write(_response(200, b"{}"))
            else:
                COUNT += 1
                FIRST = FIRST or received
                if "x-execution-id" in headers:
                    TIMES[headers["x-execution-id"]] = received
                    COUNTS[headers["x-execution-id"]] = COUNTS.get(headers["x-execution-id"], 0) + 1
                writer.write(_response(status, b"{}"))
            await writer.drain()
            if headers.get("connection", "").lower() == "close" or lines[0].endswith("HTTP/1.0"):
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _serve(port: int, status: int) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, status), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=200)
    options = parser.parse_args()
    asyncio.run(_serve(options.port, options.status))
