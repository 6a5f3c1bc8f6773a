"""A minimal SDK agent: `echo` returns its input, `slow` sleeps, `boom` raises."""

import asyncio
import os

from agentfield import Agent

app = Agent(node_id=os.environ.get("NODE_ID", "echo"), agentfield_server=os.environ["AGENTFIELD_SERVER"])


@app.reasoner()
async def echo(message: str = "", extra: dict | None = None) -> dict:
    return {"echo": message, "extra": extra}


@app.reasoner()
async def slow(seconds: float = 1.0) -> dict:
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
