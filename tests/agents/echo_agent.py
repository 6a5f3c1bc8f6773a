"""A minimal SDK agent: `echo` returns its input, `slow` sleeps, `boom` raises, `counted` notes each start."""

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


@app.skill()
def shout(text: str = "") -> dict:
    return {"text": text.upper()}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
