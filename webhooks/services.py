"""What the executions app asks of webhooks: register a block, enqueue a delivery, show attempts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from agentfield_project.timestamps import rfc3339
from webhooks import crypto, queue
from webhooks.exceptions import DeliveryInFlight, DeliveryNotReady, InvalidWebhook, WebhookNotFound
from webhooks.models import Delivery, DeliveryAttempt, Webhook

MAX_URL_LENGTH = 2048
MAX_HEADERS = 20
MAX_HEADER_LENGTH = 512
MAX_SECRET_LENGTH = 4096
FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "content-type"}
FORBIDDEN_PREFIXES = ("x-agentfield-", "webhook-")


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    secret: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    events: tuple[str, ...] = ()  # opted-in events besides the terminal ones


# Events a receiver may opt in to with `"events": [...]` (the terminal events are always sent).
OPTIONAL_EVENTS = ("execution.waiting",)


def _has_control(text: str) -> bool:
    return any(ch in text for ch in "\r\n\x00")


def parse_spec(block: Any) -> WebhookSpec:
    """Validate a request's `webhook` block; raise InvalidWebhook saying what is wrong."""
    if not isinstance(block, dict):
        raise InvalidWebhook("webhook must be an object with a url")
    url = block.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidWebhook("webhook.url is required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or _has_control(url) or " " in url:
        raise InvalidWebhook(
            f"webhook url must be at most {MAX_URL_LENGTH} characters without spaces or control characters"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidWebhook(f"invalid webhook url: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook("webhook url must use http or https")
    if not parts.hostname:
        raise InvalidWebhook("webhook url must include scheme and host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("webhook url must not contain embedded credentials")
    secret = block.get("secret") or ""
    if not isinstance(secret, str):
        raise InvalidWebhook("webhook.secret must be a string")
    if len(secret) > MAX_SECRET_LENGTH:
        raise InvalidWebhook(f"webhook secret exceeds {MAX_SECRET_LENGTH} characters")
    return WebhookSpec(
        url=parts._replace(fragment="").geturl(),
        secret=secret.strip(),
        headers=_parse_headers(block.get("headers")),
        events=_parse_events(block.get("events")),
    )


def _parse_events(events: Any) -> tuple[str, ...]:
    if events in (None, []):
        return ()
    if not isinstance(events, list) or not all(isinstance(event, str) for event in events):
        raise InvalidWebhook("webhook.events must be a list of event names")
    unknown = sorted(set(events) - set(OPTIONAL_EVENTS))
    if unknown:
        raise InvalidWebhook(
            f"webhook.events: unknown {', '.join(unknown)} (optional events: {', '.join(OPTIONAL_EVENTS)})"
        )
    return tuple(sorted(set(events)))


def _parse_headers(headers: Any) -> dict[str, str]:
    if headers in (None, {}):
        return {}
    if not isinstance(headers, dict):
        raise InvalidWebhook("webhook.headers must be an object of strings")
    if len(headers) > MAX_HEADERS:
        raise InvalidWebhook(f"webhook.headers supports at most {MAX_HEADERS} entries")
    clean: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            raise InvalidWebhook(f"webhook header '{name}' must be a string")
        name = name.strip()
        if not name:
            continue
        lower = name.lower()
        if lower in FORBIDDEN_HEADERS or lower.startswith(FORBIDDEN_PREFIXES):
            raise InvalidWebhook(f"webhook header '{name}' is reserved")
        if _has_control(name) or _has_control(value) or not name.isascii() or ":" in name:
            raise InvalidWebhook(f"webhook header '{name}' contains forbidden characters")
        if len(name) > MAX_HEADER_LENGTH or len(value) > MAX_HEADER_LENGTH:
            raise InvalidWebhook(f"webhook header '{name}' is too long")
        clean[name] = value.strip()
    return clean


def register(execution_id: str, spec: WebhookSpec, now: datetime) -> Webhook:
    """Store the webhook of an execution (call in the enqueue transaction)."""
    return Webhook.objects.create(
        execution_id=execution_id,
        url=spec.url,
        secret=crypto.encrypt(spec.secret),  # encrypted at rest; the worker decrypts to sign
        sealed_headers=Webhook.seal_headers(spec.headers),
        events=list(spec.events),
        created_at=now,
    )


def enqueue_optional(execution_id: str, event: str, body: bytes, now: datetime) -> Delivery | None:
    """Queue an opt-in event (OPTIONAL_EVENTS) if the execution's webhook asked for it."""
    if not Webhook.objects.filter(execution_id=execution_id, events__contains=[event]).exists():
        return None
    try:
        return enqueue(execution_id, event, body, now)
    except DeliveryInFlight:
        return None  # the previous one of this kind is being sent right now: the receiver hears of it


def enqueue(execution_id: str, event: str, body: bytes, now: datetime, notify: bool = True) -> Delivery | None:
    """Add a due delivery of `body` if the execution has a webhook (call in the terminal transaction).

    The NOTIFY is delivered when that transaction commits, so a dispatcher never wakes for a row
    it cannot see yet, and a rolled-back completion sends nothing. Pass `notify=False` when the
    caller NOTIFYs `queue.CHANNEL` itself (e.g. folded into its own statement).
    """
    webhook = Webhook.objects.filter(execution_id=execution_id).only("id").first()
    if webhook is None:
        return None
    max_attempts = settings.AGENTFIELD_WEBHOOK_MAX_ATTEMPTS
    existing = Delivery.objects.filter(webhook=webhook, event=event).first()
    if existing is not None:
        # The execution was re-run and finished the same way again: send the new body.
        existing.restart(body, now, max_attempts)
        delivery = existing
    else:
        delivery = Delivery.objects.create(
            webhook=webhook,
            execution_id=execution_id,
            event=event,
            body=body,
            max_attempts=max_attempts,
            next_attempt_at=now,
            created_at=now,
        )
    if notify:
        queue.wake()
    return delivery


def redeliver(execution_id: str, now: datetime) -> Delivery:
    """Start a new attempt series of the execution's latest delivery (same webhook-id), due now."""
    if not Webhook.objects.filter(execution_id=execution_id).exists():
        raise WebhookNotFound(f"no webhook registered for execution '{execution_id}'")
    delivery = Delivery.objects.filter(execution_id=execution_id).order_by("-created_at").first()
    if delivery is None:
        raise DeliveryNotReady()
    with transaction.atomic():
        delivery.redeliver(now, settings.AGENTFIELD_WEBHOOK_MAX_ATTEMPTS)
        queue.wake()
    return delivery


def registered(execution_ids: list[str]) -> set[str]:
    """The ids among `execution_ids` that have a webhook."""
    return set(Webhook.objects.filter(execution_id__in=execution_ids).values_list("execution_id", flat=True))


def attempts_for(execution_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """`webhook_events` per execution: one entry per delivery attempt, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    attempts = DeliveryAttempt.objects.filter(delivery__execution_id__in=execution_ids).select_related("delivery")
    for attempt in attempts.order_by("started_at", "id"):
        delivery = attempt.delivery
        found.setdefault(delivery.execution_id, []).append(
            {
                "id": attempt.id,
                "delivery_id": str(delivery.id),
                "execution_id": delivery.execution_id,
                "event_type": delivery.event,
                "attempt": attempt.number,
                "status": "delivered" if attempt.succeeded else "failed",
                "http_status": attempt.status_code,
                "error_class": attempt.error_class or None,
                "error_message": attempt.error or None,
                "duration_ms": attempt.duration_ms,
                "response_body": attempt.response_body,
                "created_at": rfc3339(attempt.started_at),
            }
        )
    return found


def reseal_secrets(webhooks: Any = Webhook) -> tuple[int, int]:
    """Re-encrypt every stored secret and header set with the current key: (resealed, unreadable).

    Run after putting a new key first in AGENTFIELD_SECRET_KEYS (then drop the old one), and by
    migration 0003 for values sealed with the formerly constant development key. `webhooks` is
    the model, or its historical version inside a migration.
    """
    resealed = unreadable = 0
    for webhook in webhooks.objects.exclude(secret="", sealed_headers="").iterator():
        try:
            secret, headers = crypto.reseal(webhook.secret), crypto.reseal(webhook.sealed_headers)
        except crypto.SecretDecryptionError:
            unreadable += 1
            continue
        if (secret, headers) != (webhook.secret, webhook.sealed_headers):
            webhooks.objects.filter(pk=webhook.pk).update(secret=secret, sealed_headers=headers)
            resealed += 1
    return resealed, unreadable
