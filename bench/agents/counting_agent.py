"""A real SDK agent for the hand-off benchmark: `counted` notes every start of every execution.

Each start appends the execution id (and a newline) to $STARTS_FILE before sleeping, so the
benchmark counts how many times each execution really ran, whatever the control plane recorded.
"""

import asyncio
import os

from agentfield import Agent
from agentfield.execution_context import get_current_context

app = Agent(node_id=os.environ.get("NODE_ID", "counting"), agentfield_server=os.environ["AGENTFIELD_SERVER"])


@app.reasoner()
async def counted(seconds: float = 60.0) -> dict:
    # One write per line with O_APPEND: concurrent starts never interleave their ids.
    with open(os.environ["STARTS_FILE"], "a") as starts:
        starts.write(get_current_context().execution_id + "\n")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
