"""Webhook secrets and extra headers are stored encrypted and can be resealed with a new key."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from agentfield_project.secret_key import LEGACY_DEFAULT
from tests.webhooks import factories
from webhooks import crypto
from webhooks.models import Webhook

NOW = datetime(2026, 12, 2, tzinfo=UTC)
HEADERS = {"Authorization": "Bearer receiver-token-123", "X-Tenant": "acme"}


def _stored(execution_id: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, sealed_headers FROM webhooks_webhook WHERE execution_id = %s", [execution_id])
        return cursor.fetchone()


@pytest.mark.django_db
def test_headers_are_stored_encrypted_and_read_back_in_clear():
    delivery = factories.delivery("https://hooks.example.com/af", NOW, secret="whsec_abc", headers=HEADERS)
    secret, sealed = _stored(delivery.execution_id)
    assert "receiver-token-123" not in sealed and "acme" not in sealed and sealed.startswith("fernet:")
    assert "whsec_abc" not in secret
    assert Webhook.objects.get(execution_id=delivery.execution_id).headers == HEADERS
    bare = factories.delivery("https://hooks.example.com/af", NOW)
    assert _stored(bare.execution_id)[1] == "" and bare.webhook.headers == {}


@pytest.mark.django_db
def test_reseal_secrets_moves_every_webhook_to_the_first_key(capsys):
    with override_settings(AGENTFIELD_SECRET_KEYS=["old-key-material"]):
        delivery = factories.delivery("https://hooks.example.com/af", NOW, secret="whsec_abc", headers=HEADERS)
    with override_settings(AGENTFIELD_SECRET_KEYS=["new-key-material", "old-key-material"]):
        call_command("reseal_secrets")
    assert "resealed 1 webhook(s)" in capsys.readouterr().out
    with override_settings(AGENTFIELD_SECRET_KEYS=["new-key-material"]):
        webhook = Webhook.objects.get(execution_id=delivery.execution_id)
        assert crypto.decrypt(webhook.secret) == "whsec_abc" and webhook.headers == HEADERS
    with override_settings(AGENTFIELD_SECRET_KEYS=["unrelated-key"]):
        with pytest.raises(CommandError, match="1 webhook"):
            call_command("reseal_secrets")
    with override_settings(AGENTFIELD_SECRET_KEYS=["new-key-material"]):
        assert Webhook.objects.get(execution_id=delivery.execution_id).headers == HEADERS  # left as it was


@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_plain_headers_and_reseals_secrets_under_the_public_key():
    executor = MigrationExecutor(connection)
    executor.migrate([("webhooks", "0002_delivery_claimed_at")])
    with override_settings(AGENTFIELD_SECRET_KEYS=[], SECRET_KEY=LEGACY_DEFAULT):
        legacy_secret = crypto.encrypt("whsec_from_a_dump")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO webhooks_webhook (execution_id, url, secret, headers, created_at)"
            " VALUES ('exec_m1', 'https://h.example/x', %s, %s, now()), ('exec_m2', 'https://h.example/x', '', '{}', now())",
            [legacy_secret, json.dumps(HEADERS)],
        )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("webhooks"))
    secret, sealed = _stored("exec_m1")
    assert secret != legacy_secret and crypto.decrypt(secret) == "whsec_from_a_dump"
    assert "receiver-token" not in sealed and Webhook.objects.get(execution_id="exec_m1").headers == HEADERS
    assert _stored("exec_m2") == ("", "")
    with override_settings(AGENTFIELD_SECRET_KEYS=[], SECRET_KEY=LEGACY_DEFAULT):
        with pytest.raises(crypto.SecretDecryptionError):
            crypto.decrypt(secret)  # nothing readable with the public key any more
