from __future__ import annotations

import pytest

from tests.http_fakes import Receiver


@pytest.fixture
def second_receiver():
    """A receiver on 127.0.0.2: loopback, but outside the allowed 127.0.0.1/32."""
    with Receiver(host="127.0.0.2") as server:
        yield server


@pytest.fixture
def delivery_worker(launch):
    """Start `manage.py run_dispatcher` processes (they run the delivery loop); stopped at test end."""
    return launch.dispatcher
