"""What the executions app asks of webhooks: parse a block, register, enqueue, list attempts."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection, transaction

from tests.processes import database_url
from tests.webhooks import factories
from webhooks import queue, services
from webhooks.exceptions import InvalidWebhook
from webhooks.models import Delivery
from webhooks.transport import DeliveryResult

URL = "https://hooks.example.com/af"


def test_optional_events_are_opted_in_by_name_and_unknown_ones_refused():
    assert services.parse_spec({"url": URL, "events": ["execution.waiting"]}).events == ("execution.waiting",)
    assert services.parse_spec({"url": URL}).events == ()
    with pytest.raises(InvalidWebhook, match="unknown execution.started"):
        services.parse_spec({"url": URL, "events": ["execution.started"]})
    with pytest.raises(InvalidWebhook, match="list of event names"):
        services.parse_spec({"url": URL, "events": "execution.waiting"})


def test_parse_spec_normalises_a_valid_block():
    spec = services.parse_spec(
        {"url": f"  {URL}#frag ", "secret": "  s3cr3t  ", "headers": {" X-Tenant ": " acme ", "": "skipped"}}
    )
    assert spec.url == URL and spec.secret == "s3cr3t" and spec.headers == {"X-Tenant": "acme"}
    assert services.parse_spec({"url": URL, "secret": None, "headers": None}).secret == ""


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("https://x", "must be an object"),
        ({}, "webhook.url is required"),
        ({"url": "   "}, "webhook.url is required"),
        ({"url": 42}, "webhook.url is required"),
        ({"url": "ftp://example.com/x"}, "must use http or https"),
        ({"url": "file:///etc/passwd"}, "must use http or https"),
        ({"url": "javascript:alert(1)"}, "must use http or https"),
        ({"url": "example.com/hook"}, "must use http or https"),
        ({"url": "http:///nohost"}, "must include scheme and host"),
        ({"url": "https://user:pass@example.com/"}, "embedded credentials"),
        ({"url": "https://user@example.com/"}, "embedded credentials"),
        ({"url": "https://example.com:99999/"}, "invalid webhook url"),
        ({"url": "https://example.com/a b"}, "without spaces"),
        ({"url": "https://example.com/\r\nX-Injected: 1"}, "control characters"),
        ({"url": "https://example.com/" + "a" * 2100}, "at most 2048"),
        ({"url": URL, "secret": "x" * 4097}, "exceeds 4096"),
        ({"url": URL, "secret": 7}, "secret must be a string"),
        ({"url": URL, "headers": ["X-A"]}, "headers must be an object"),
        ({"url": URL, "headers": {f"X-{i}": "v" for i in range(21)}}, "at most 20 entries"),
        ({"url": URL, "headers": {"Host": "evil"}}, "reserved"),
        ({"url": URL, "headers": {"content-length": "1"}}, "reserved"),
        ({"url": URL, "headers": {"Transfer-Encoding": "chunked"}}, "reserved"),
        ({"url": URL, "headers": {"X-AgentField-Signature": "x"}}, "reserved"),
        ({"url": URL, "headers": {"webhook-id": "x"}}, "reserved"),
        ({"url": URL, "headers": {"X-A": "b\r\nX-Injected: 1"}}, "forbidden characters"),
        ({"url": URL, "headers": {"X-A": "b\x00"}}, "forbidden characters"),
        ({"url": URL, "headers": {"X-Ä": "b"}}, "forbidden characters"),
        ({"url": URL, "headers": {"X-A": 1}}, "must be a string"),
        ({"url": URL, "headers": {"X-A": "v" * 513}}, "too long"),
    ],
)
def test_parse_spec_rejects_bad_blocks_with_a_clear_message(block, message):
    with pytest.raises(InvalidWebhook, match=message):
        services.parse_spec(block)


def test_parse_spec_accepts_twenty_headers_and_a_4096_character_secret():
    spec = services.parse_spec({"url": URL, "secret": "s" * 4096, "headers": {f"X-{i}": "v" for i in range(20)}})
    assert len(spec.headers) == 20 and len(spec.secret) == 4096


@pytest.mark.django_db
def test_enqueue_without_a_webhook_does_nothing(now):
    assert services.enqueue("exec_plain", "execution.completed", b"{}", now) is None
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_enqueue_makes_one_due_delivery_that_keeps_the_bytes(now, settings):
    settings.AGENTFIELD_WEBHOOK_MAX_ATTEMPTS = 3
    services.register("exec_1", services.parse_spec({"url": URL}), now)
    body = '{"result":"ü<&>"}'.encode()
    delivery = services.enqueue("exec_1", "execution.completed", body, now)
    delivery.refresh_from_db()
    assert bytes(delivery.body) == body and delivery.max_attempts == 3
    assert delivery.status == Delivery.Status.PENDING and delivery.next_attempt_at == now
    assert services.registered(["exec_1", "exec_2"]) == {"exec_1"}


@pytest.mark.django_db(transaction=True)
def test_enqueue_notifies_dispatchers_when_its_transaction_commits(now):
    services.register("exec_n", services.parse_spec({"url": URL}), now)
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as listener:
        listener.execute(f'LISTEN "{queue.CHANNEL}"')
        with transaction.atomic():
            services.enqueue("exec_n", "execution.failed", b"{}", now)
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []  # nothing before commit
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert [note.channel for note in notes] == [queue.CHANNEL]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_completion_leaves_no_delivery_and_no_notification(now):
    services.register("exec_r", services.parse_spec({"url": URL}), now)
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as listener:
        listener.execute(f'LISTEN "{queue.CHANNEL}"')
        with pytest.raises(RuntimeError), transaction.atomic():
            services.enqueue("exec_r", "execution.completed", b"{}", now)
            raise RuntimeError("the execution update failed")
        assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
    assert not Delivery.objects.exists()


@pytest.mark.django_db
def test_attempts_for_lists_one_entry_per_attempt_oldest_first(now):
    delivery = factories.delivery(URL, now, secret="never-shown-secret")
    [claimed] = queue.claim_due("w1", now, limit=1)
    claimed.retry_at(
        claimed.lease_token, DeliveryResult(503, "http_status", "non-2xx response: 503", 9, "busy"), now, now
    )
    [claimed] = queue.claim_due("w1", now, limit=1)
    claimed.mark_delivered(claimed.lease_token, DeliveryResult(200, None, "", 4, "ok"), now, now)
    found = services.attempts_for([delivery.execution_id, "exec_other"])
    assert list(found) == [delivery.execution_id]
    first, second = found[delivery.execution_id]
    assert first["attempt"] == 1 and first["status"] == "failed" and first["http_status"] == 503
    assert first["error_class"] == "http_status" and first["response_body"] == "busy"
    assert second["attempt"] == 2 and second["status"] == "delivered" and second["error_class"] is None
    assert second["delivery_id"] == str(delivery.id) and second["event_type"] == "execution.completed"
    assert "never-shown-secret" not in str(found)


def test_system_check_names_a_bad_allowed_network(settings):
    from webhooks.checks import check_webhook_settings

    assert check_webhook_settings() == []
    settings.AGENTFIELD_WEBHOOK_ALLOWED_CIDRS = ["127.0.0.1/32", "localhost"]
    settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS = 0
    errors = check_webhook_settings()
    assert [error.id for error in errors] == ["webhooks.E001", "webhooks.E002"]
    assert "'localhost' is not a network" in errors[0].msg


@pytest.mark.django_db
def test_register_stores_the_secret_encrypted_at_rest(now):
    from webhooks import crypto
    from webhooks.models import Webhook

    spec = services.parse_spec({"url": URL, "secret": "whsec_stored-encrypted-1234"})
    services.register("exec_encrypted", spec, now)
    stored = Webhook.objects.get(execution_id="exec_encrypted").secret
    assert "stored-encrypted" not in stored and stored.startswith("fernet:")
    assert crypto.decrypt(stored) == "whsec_stored-encrypted-1234"
