"""Per-key rate limits: a JSON 429 with Retry-After past a key's budget, counted per scope (and per node)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from rest_framework.test import APIClient

from nodes import auth, policy, throttling
from tests.factories import make_node

LIMITS = {"execute": "2/min:2", "node": "3/min:3", "query": "1/min:1"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("200/s:400", throttling.Rate(200.0, 400)),
        ("600/min", throttling.Rate(10.0, 600)),
        ("36/h:2", throttling.Rate(0.01, 2)),
        (" 5 ", throttling.Rate(5.0, 5)),
        ("", None),
    ],
)
def test_rates_parse(text, rate):
    assert throttling.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "5/fortnight", "0/s", "-1/s", "5/s:0", "5/s:x"])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="rate"):
        throttling.parse_rate(text)


def test_a_bucket_spends_its_burst_then_refills_at_the_rate():
    rate = throttling.Rate(per_second=2.0, burst=3)
    bucket, waits = None, []
    for _ in range(4):
        bucket, wait = throttling.take(bucket, 10.0, rate)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 0.5]
    bucket, wait = throttling.take(bucket, 10.5, rate)
    assert wait == 0.0 and bucket.tokens == pytest.approx(0.0)
    bucket, wait = throttling.take(bucket, 100.0, rate)  # a long pause refills only up to the burst
    assert wait == 0.0 and bucket.tokens == 2.0


def test_the_limiter_keeps_buckets_apart_and_forgets_the_least_recently_used():
    clock = Clock()
    limiter = throttling.Limiter(clock, capacity=2)
    rate = throttling.Rate(1 / 60, 1)
    assert limiter.acquire("a", rate) == 0.0
    assert limiter.acquire("a", rate) == pytest.approx(60.0)
    assert limiter.acquire("b", rate) == 0.0
    assert limiter.acquire("c", rate) == 0.0  # "a" is forgotten: at most 2 buckets are kept
    assert limiter.acquire("a", rate) == 0.0
    clock.now += 60
    assert limiter.acquire("b", rate) == 0.0


@pytest.fixture
def limited(settings):
    settings.AGENTFIELD_RATE_LIMITS = LIMITS


def _key(role: str = policy.CLIENT) -> str:
    return auth.issue_key(f"k-{role}", role)[1]


def _post(path: str, key: str, body: dict | None = None):
    return APIClient().post(
        path, data=json.dumps(body or {}), content_type="application/json", headers={"X-API-Key": key}
    )


@pytest.mark.django_db
def test_execute_past_a_keys_budget_is_a_json_429_with_retry_after_and_other_keys_go_on(limited):
    make_node("n1", reasoners=("work",))
    first, second = _key(), _key()
    answers = [_post("/api/v1/execute/async/n1.work", first, {"input": {}}) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].json()["code"] == "throttled" and "throttled" in answers[2].json()["error"]
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert _post("/api/v1/execute/async/n1.work", second, {"input": {}}).status_code == 202
    refused = _post("/api/v1/execute/n1.work", first, {"input": {}})  # the sync route shares the budget
    assert refused.status_code == 429 and refused.json()["code"] == "throttled" and refused["Retry-After"]


@pytest.mark.django_db
def test_heartbeats_are_counted_per_node_so_one_agent_key_serves_many(limited):
    key = _key(policy.AGENT)
    for node_id in ("n1", "n2"):
        assert _post("/api/v1/nodes/register", key, _registration(node_id)).status_code == 201
    beats = [_post("/api/v1/nodes/n1/heartbeat", key).status_code for _ in range(4)]
    assert beats == [200, 200, 200, 429]
    assert _post("/api/v1/nodes/n2/heartbeat", key).status_code == 200


@pytest.mark.django_db
def test_queries_are_limited_and_staff_and_the_open_api_are_not(limited, admin_client):
    key = _key(policy.ADMIN)
    assert APIClient().get("/api/v1/executions", headers={"X-API-Key": key}).status_code == 200
    assert _post("/api/v1/executions/batch-status", key, {"execution_ids": []}).status_code == 429
    assert all(admin_client.get("/api/v1/executions").status_code == 200 for _ in range(3))


@pytest.mark.django_db
def test_an_unlimited_scope_is_not_counted(settings):
    settings.AGENTFIELD_RATE_LIMITS = {**LIMITS, "query": ""}
    key = _key(policy.ADMIN)
    assert all(APIClient().get("/api/v1/executions", headers={"X-API-Key": key}).status_code == 200 for _ in range(5))


def test_a_mistyped_rate_fails_the_system_check():
    with override_settings(AGENTFIELD_RATE_LIMITS={**LIMITS, "execute": "lots"}):
        with pytest.raises(SystemCheckError, match="AGENTFIELD_RATE_LIMIT_EXECUTE"):
            call_command("check")


def test_the_stream_counter_caps_open_streams_per_key(settings):
    settings.AGENTFIELD_MAX_STREAMS_PER_KEY = 2
    counter = throttling.StreamCounter()
    key = policy.Principal(7, policy.ADMIN)
    assert counter.try_open(key) and counter.try_open(key) and not counter.try_open(key)
    assert counter.try_open(policy.Principal(8, policy.ADMIN)) and counter.try_open(policy.STAFF)
    counter.close(key)
    assert counter.count(7) == 1 and counter.try_open(key)


def _registration(node_id: str) -> dict:
    return {"id": node_id, "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "work"}], "skills": []}
