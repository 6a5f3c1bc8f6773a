"""agentfield_project/runtime/batching.py: requests gathered on the event loop, answered in batches."""

from __future__ import annotations

import asyncio
import threading

from agentfield_project.runtime import batching, direct


class View:
    """A stand-in view class: batching only uses it as a key."""


def test_two_batches_of_one_view_are_answered_at_once_and_no_more(monkeypatch):
    """While one batch waits (on the database, in production), the next one is answered beside it."""
    first_started, release = threading.Event(), threading.Event()
    running, most = [0], [0]
    lock = threading.Lock()

    def respond_batch(view_class, requests):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if not first_started.is_set():
            first_started.set()
            release.wait(timeout=30)  # held until a later batch has run beside it
        else:
            release.set()
        with lock:
            running[0] -= 1
        return [(200, [], body) for _, _, body in requests]

    monkeypatch.setattr(direct, "respond_batch", respond_batch)
    batches = batching.Batches()

    async def everything() -> list:
        first = asyncio.ensure_future(batches.answer(View, ({}, {}, b"1")))
        await asyncio.get_running_loop().run_in_executor(None, first_started.wait, 30)
        rest = [asyncio.ensure_future(batches.answer(View, ({}, {}, str(n).encode()))) for n in range(2, 12)]
        return await asyncio.gather(first, *rest)

    answers = asyncio.run(everything())
    assert [body for _, _, body in answers] == [str(n).encode() for n in range(1, 12)]
    assert release.is_set()  # the second batch ran while the first was still held
    assert most[0] == 2  # never more than the two threads
