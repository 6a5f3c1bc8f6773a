"""The deferred-execution page's orchestrator and its three workers (one script, NODE_ID picks)."""

import asyncio
import os

from agentfield import Agent

NODE_ID = os.environ["NODE_ID"]
app = Agent(node_id=NODE_ID, agentfield_server=os.environ["AGENTFIELD_SERVER"])

if NODE_ID == "orchestrator":

    @app.reasoner()
    async def generate_quarterly_report(quarter: str) -> dict:
        financial, market, customer = await asyncio.gather(
            app.call("finance.deep_analysis", quarter=quarter),
            app.call("research.market_trends", quarter=quarter),
            app.call("analytics.churn_report", quarter=quarter),
        )
        return {"sections": [financial, market, customer]}

else:
    REASONER = {"finance": "deep_analysis", "research": "market_trends", "analytics": "churn_report"}[NODE_ID]

    @app.reasoner(name=REASONER)
    async def analyse(quarter: str) -> dict:
        await asyncio.sleep(0.2)
        return {"section": REASONER, "quarter": quarter, "node": NODE_ID}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
