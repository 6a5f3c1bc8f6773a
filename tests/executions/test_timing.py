"""The duration shown while an execution runs grows from its first start; a finished one keeps its own."""

from datetime import timedelta

from executions.timing import elapsed_ms


def test_a_running_execution_counts_from_its_first_start(now):
    assert elapsed_ms("running", now - timedelta(seconds=90), None, now) == 90_000
    assert elapsed_ms("waiting", now - timedelta(seconds=2), None, now) == 2_000


def test_a_requeued_execution_keeps_counting_from_its_first_start(now):
    assert elapsed_ms("queued", now - timedelta(minutes=5), None, now) == 300_000


def test_a_finished_execution_reports_its_stored_duration(now):
    assert elapsed_ms("succeeded", now - timedelta(hours=1), 1234, now) == 1234
    assert elapsed_ms("cancelled", now - timedelta(hours=1), None, now) is None


def test_an_execution_that_never_started_has_no_duration(now):
    assert elapsed_ms("queued", None, None, now) is None
