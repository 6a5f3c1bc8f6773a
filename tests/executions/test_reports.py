"""executions/reports.py: what the overview reads, without scanning the whole executions table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from executions import reports
from tests.factories import make_execution, make_node


@pytest.mark.django_db
def test_depth_counts_active_work_exactly_and_finished_work_of_the_last_day(now):
    node = make_node(now=now)
    make_execution(node, now=now - timedelta(days=40))  # queued for weeks: still counted
    make_execution(node, now=now, status="running")
    make_execution(node, now=now, status="succeeded", completed_at=now - timedelta(hours=2))
    make_execution(node, now=now, status="failed", completed_at=now - timedelta(days=3))  # too old to count
    depth = reports.depth(now)
    assert depth.by_status == {"queued": 1, "running": 1, "succeeded": 1}
    assert depth.due == 1
