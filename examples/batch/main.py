"""The batch agent: summarise a list of documents, checkpointing after every item.

A restarted agent (or a re-dispatched execution) reads `done` and `results` from its workflow
memory (scope id = the run id) and resumes where the last run stopped: a crash loses at most
the item in flight.

Model: with FAKE_LLM_BASE_URL set, `app.ai` talks to the local stand-in (fake_llm.py); otherwise
BATCH_MODEL (default `openai/gpt-4o-mini`) with the provider's usual key variable
(OPENAI_API_KEY, ...), which LiteLLM reads itself.
"""

from __future__ import annotations

import asyncio
import os

# LiteLLM otherwise downloads a price map from GitHub on first use.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from agentfield import Agent, AIConfig  # noqa: E402
from agentfield.logger import log_info  # noqa: E402


def ai_config() -> AIConfig:
    """The fake LLM when FAKE_LLM_BASE_URL is set, else the model named by BATCH_MODEL."""
    fake = os.getenv("FAKE_LLM_BASE_URL")
    if fake:
        return AIConfig(model="openai/fake-llm", api_base=fake, api_key="sk-fake")
    return AIConfig(model=os.getenv("BATCH_MODEL", "openai/gpt-4o-mini"))


def warm_up_model_client() -> None:
    """Do now, before serving, the imports that `app.ai`'s first call would do inside the event loop.

    They take seconds (LiteLLM, the OpenAI client, tokenizer data); done lazily they freeze the
    agent's event loop, its heartbeats stop, and the control plane may declare it dead mid-run.
    `mock_response` makes this a local call: nothing is sent to any model.
    """
    import litellm
    import openai.resources  # noqa: F401

    litellm.completion(model="openai/warm-up", messages=[{"role": "user", "content": "warm-up"}], mock_response="ok")


app = Agent(
    node_id=os.getenv("NODE_ID", "batch"),
    agentfield_server=os.getenv("AGENTFIELD_SERVER", "http://127.0.0.1:8080"),
    ai_config=ai_config(),
)


@app.reasoner(tags=["entry"])
async def process_corpus(items: list[str], model: str | None = None) -> dict:
    # `app.memory` follows the agent's *latest* execution; take this run's client before any await.
    memory = app.memory
    total = len(items)
    results: list[dict] = await memory.get("results", default=[])
    # Resume from `results`, not `done`: it is checkpointed first, so a crash between the two
    # writes leaves one stored summary that `done` does not count yet (`done` is for watchers).
    done = len(results)
    if done:
        log_info(f"resuming at {done}/{total}")
    for i in range(done, total):
        summary = await app.ai(system="Summarize this document in three sentences.", user=items[i], model=model)
        results.append({"item": i, "summary": str(summary)})
        # Checkpoint every step so a crash loses at most one item (results first: `done` never
        # claims an item whose summary is not stored).
        await memory.set("results", results)
        await memory.set("done", i + 1)
        log_info(f"processed {i + 1}/{total}")
        await asyncio.sleep(0)  # yield; real work goes here
    return {"processed": total, "results": results}


if __name__ == "__main__":
    warm_up_model_client()
    port = os.getenv("PORT")
    app.run(host=os.getenv("HOST", "127.0.0.1"), **({"port": int(port)} if port else {}))
