"""A minimal SDK agent: `echo` returns its input, `slow` sleeps, `boom` raises, `counted` notes each start;
`loop` ticks until stopped and `fan` app.calls `loop` children (for cancel tests); `gated` pauses
on an approval."""

import asyncio
import os

from agentfield import Agent
from agentfield.execution_context import get_current_context

app = Agent(node_id=os.environ.get("NODE_ID", "echo"), agentfield_server=os.environ["AGENTFIELD_SERVER"])


@app.reasoner()
async def echo(message: str = "", extra: dict | None = None) -> dict:
    return {"echo": message, "extra": extra}


@app.reasoner()
async def slow(seconds: float = 1.0) -> dict:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.reasoner()
async def counted(seconds: float = 1.0) -> dict:
    """Appends its execution id to $STARTS_FILE when it starts: a test counts how often each ran."""
    with open(os.environ["STARTS_FILE"], "a") as starts:
        starts.write(get_current_context().execution_id + "\n")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.reasoner()
async def boom(message: str = "boom") -> dict:
    raise ValueError(message)


@app.reasoner()
async def loop(seconds: float = 60.0) -> dict:
    """Appends its execution id to $TICKS_FILE every 0.1 s: a test sees whether it still advances."""
    execution_id = get_current_context().execution_id
    ticks = int(seconds / 0.1)
    for _ in range(ticks):
        with open(os.environ["TICKS_FILE"], "a") as file:
            file.write(execution_id + "\n")
        await asyncio.sleep(0.1)
    return {"ticks": ticks}


@app.reasoner()
async def fan(children: int = 3, seconds: float = 60.0) -> dict:
    node = os.environ.get("NODE_ID", "echo")
    results = await asyncio.gather(*(app.call(f"{node}.loop", seconds=seconds) for _ in range(children)))
    return {"children": results}


@app.reasoner()
async def gated(request_id: str = "req-1", hours: float = 1.0, timeout: float | None = None) -> dict:
    """Pauses on a human decision and returns it (the product page's approval gate)."""
    url = f"https://approvals.example.com/{request_id}"
    result = await app.pause(approval_request_id=request_id, approval_request_url=url, expires_in_hours=hours,
                             timeout=timeout)  # fmt: skip
    return {"decision": result.decision, "feedback": result.feedback}


@app.skill()
def shout(text: str = "") -> dict:
    return {"text": text.upper()}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
