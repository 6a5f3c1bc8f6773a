from __future__ import annotations

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    """A live receiver on 127.0.0.1 (answers 200 unless scripted)."""
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def delivery_worker(launch):
    """Start `manage.py run_dispatcher` processes (they run the delivery loop); stopped at test end."""
    return launch.dispatcher
