"""The batch example's OpenAI stand-in (examples/batch/fake_llm.py) as a fixture on a loopback port.

tests/conftest.py makes `fake_llm` available to every test package.
"""

from __future__ import annotations

import importlib.util
import threading

import pytest

from tests.processes import ROOT, free_port


def load_fake_llm():
    spec = importlib.util.spec_from_file_location("fake_llm", ROOT / "examples" / "batch" / "fake_llm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_llm(tmp_path):
    """The example's OpenAI stand-in on a loopback port, slowed down so the run can be killed mid-way."""
    trace = tmp_path / "llm-trace.jsonl"
    server = load_fake_llm().FakeLLMServer(free_port(), trace=trace, delay=0.1)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", trace
    server.shutdown()
    server.server_close()
