from datetime import timedelta

import pytest

from webhooks import retry

DEFAULT = retry.Schedule(max_attempts=5, base_seconds=5, cap_seconds=300)


def test_default_schedule_is_immediately_then_5_10_20_40_seconds(now):
    offsets = [0.0]
    moment = now
    for attempt in range(1, 6):
        decision = retry.decide(500, attempt, moment, DEFAULT)
        if decision.outcome != retry.RETRY:
            break
        offsets.append((decision.next_attempt_at - now).total_seconds())
        moment = decision.next_attempt_at
    assert offsets == [0, 5, 15, 35, 75]  # gaps 5, 10, 20, 40
    assert decision.outcome == retry.FAILED
    assert "5 attempts" in decision.reason


def test_backoff_doubles_up_to_the_cap():
    schedule = retry.Schedule(max_attempts=20, base_seconds=5, cap_seconds=300)
    assert [retry.backoff_seconds(n, schedule) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry.backoff_seconds(10_000, schedule) == 300


def test_2xx_is_delivered_whatever_the_attempt(now):
    for status in (200, 201, 204, 299):
        assert retry.decide(status, 5, now, DEFAULT).outcome == retry.DELIVERED


def test_410_stops_retrying_at_once(now):
    decision = retry.decide(410, 1, now, DEFAULT)
    assert decision.outcome == retry.FAILED and "410" in decision.reason


@pytest.mark.parametrize("status", [None, 301, 302, 304, 400, 404, 429, 500, 503])
def test_everything_else_is_retried(now, status):
    decision = retry.decide(status, 1, now, DEFAULT)
    assert decision.outcome == retry.RETRY
    assert decision.next_attempt_at == now + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("3", 5), ("7", 7), ("999999", 300), ("garbage", 20), ("", 20), ("-5", 20), ("Wed, 21 Oct 2015 07:28:00 GMT", 5)],
)
def test_retry_after_is_honoured_between_base_and_cap(now, header, seconds):
    decision = retry.decide(429, 3, now, DEFAULT, retry_after=header)
    assert decision.next_attempt_at == now + timedelta(seconds=seconds)


def test_retry_after_http_date_in_the_future(now):
    header = (now + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry.retry_after_seconds(header, now) == 60
    decision = retry.decide(503, 1, now, DEFAULT, retry_after=header)
    assert decision.next_attempt_at == now + timedelta(seconds=60)


def test_the_last_attempt_fails_even_with_retry_after(now):
    assert retry.decide(429, 5, now, DEFAULT, retry_after="1").outcome == retry.FAILED
