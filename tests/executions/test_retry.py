"""executions.retry: the dispatch retry policy (pure)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from executions import retry


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (7, 60), (50, 60), (10_000, 60)],
)
def test_next_run_at_doubles_from_the_base_up_to_the_cap(now, attempt, seconds):
    assert retry.next_run_at(attempt, now, base=1.0, cap=60.0) == now + timedelta(seconds=seconds)


def test_next_run_at_with_a_fractional_base(now):
    assert retry.next_run_at(3, now, base=0.25, cap=60.0) == now + timedelta(seconds=1)


def test_next_run_at_never_goes_back_in_time(now):
    assert retry.next_run_at(1, now, base=0.0, cap=60.0) == now


@pytest.mark.parametrize("code", [None, 408, 429, 500, 502, 503, 504, 599])
def test_no_answer_timeouts_throttling_and_server_errors_are_retryable(code):
    assert retry.is_retryable(code)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 405, 409, 410, 413, 422])
def test_other_client_errors_are_not_retryable(code):
    assert not retry.is_retryable(code)
