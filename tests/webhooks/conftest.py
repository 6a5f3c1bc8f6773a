from __future__ import annotations

import sys

import pytest

from tests import processes
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    """A live receiver on 127.0.0.1 (answers 200 unless scripted)."""
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def delivery_worker(db_url, log_dir, request):
    """Start processes running only the delivery loop (`tests/webhooks/delivery_process.py`).

    Stand-in for `manage.py run_dispatcher` until it runs the DeliveryWorker too; every process
    is stopped when the test ends, and its log is printed if the test failed.
    """
    started: list[processes.Process] = []

    def start(**settings) -> processes.Process:
        args = [sys.executable, "-m", "tests.webhooks.delivery_process"]
        process = processes.Process("delivery-worker", args, processes.base_env(db_url, **settings), log_dir)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(timeout=10)
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for process in started:
            print(f"----- {process.name} ({process.log_path}) -----\n{process.output()[-6000:]}")
