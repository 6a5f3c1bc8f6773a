"""A real SDK agent for the fan-out benchmark: `parent(n)` app.call's `child` n times and gathers."""

import asyncio
import os

from agentfield import Agent

NODE_ID = os.environ.get("NODE_ID", "fanout")
app = Agent(node_id=NODE_ID, agentfield_server=os.environ["AGENTFIELD_SERVER"])


@app.reasoner()
async def parent(n: int = 1000) -> dict:
    results = await asyncio.gather(*(app.call(f"{NODE_ID}.child", index=i) for i in range(n)))
    return {"children": len(results)}


@app.reasoner()
async def child(index: int = 0) -> dict:
    return {"index": index}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
