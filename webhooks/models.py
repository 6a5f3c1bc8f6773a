"""Webhook registrations, the durable delivery queue, and one row per delivery attempt.

This app knows nothing of executions beyond their id (a plain string): the executions app
registers a webhook when it enqueues an execution and adds a delivery in the transaction that
makes the execution terminal.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.db.models import Q

from webhooks import crypto
from webhooks.exceptions import DeliveryInFlight, StaleLease

if TYPE_CHECKING:
    from webhooks.transport import DeliveryResult

LOST_ATTEMPT = "the worker making this attempt stopped before recording its outcome (lease expired)"


class Webhook(models.Model):
    """The `webhook` block of one execution request."""

    execution_id = models.CharField(max_length=64, unique=True)
    url = models.URLField(max_length=2048)
    secret = models.TextField(blank=True, default="")
    # The extra headers (often credentials for the receiver) as encrypted JSON, like the secret.
    sealed_headers = models.TextField(blank=True, default="")
    events = models.JSONField(default=list, blank=True)  # opted-in events (services.OPTIONAL_EVENTS)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.execution_id} -> {self.url}"

    @staticmethod
    def seal_headers(headers: dict[str, str]) -> str:
        return crypto.encrypt(json.dumps(headers, sort_keys=True)) if headers else ""

    @property
    def headers(self) -> dict[str, str]:
        """The extra headers in clear (crypto.SecretDecryptionError if no configured key reads them)."""
        return json.loads(crypto.decrypt(self.sealed_headers)) if self.sealed_headers else {}


class Delivery(models.Model):
    """One event to deliver; its id is the `webhook-id` header, the same on every attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # due at next_attempt_at
        IN_FLIGHT = "in_flight", "In flight"  # claimed; lease_expires_at bounds the attempt
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"  # attempts exhausted, or 410 Gone

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    execution_id = models.CharField(max_length=64, db_index=True)
    event = models.CharField(max_length=64)
    # Serialised once, signed and sent byte for byte on every attempt.
    body = models.BinaryField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=255, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_status_code = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx", condition=Q(status="pending")),
            models.Index(fields=["lease_expires_at"], name="delivery_lease_idx", condition=Q(status="in_flight")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "event"], name="delivery_one_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.execution_id} ({self.status})"

    # -- transitions -----------------------------------------------------------------------------
    # Conditional UPDATEs. An attempt's outcome is fenced by its lease token: a worker whose lease
    # was reaped (it stalled past the deadline) can no longer overwrite the newer state.

    def mark_delivered(
        self, lease_token: uuid.UUID, result: DeliveryResult, started_at: datetime, now: datetime
    ) -> None:
        """Delivered: record the attempt; raise StaleLease if this lease no longer holds the row."""
        self._end_attempt(lease_token, result, started_at, status=self.Status.DELIVERED, completed_at=now)

    def retry_at(
        self, lease_token: uuid.UUID, result: DeliveryResult, started_at: datetime, next_attempt_at: datetime
    ) -> None:
        """Back to pending, due at `next_attempt_at`; raise StaleLease if the lease was taken over."""
        self._end_attempt(lease_token, result, started_at, status=self.Status.PENDING, next_attempt_at=next_attempt_at)

    def mark_failed(
        self, lease_token: uuid.UUID, result: DeliveryResult, started_at: datetime, now: datetime, reason: str = ""
    ) -> None:
        """Failed for good (attempts exhausted or 410); raise StaleLease if the lease was taken over."""
        error = "; ".join(part for part in (result.error, reason) if part)
        self._end_attempt(
            lease_token, result, started_at, status=self.Status.FAILED, completed_at=now, last_error=error
        )

    def _end_attempt(
        self, lease_token: uuid.UUID, result: DeliveryResult, started_at: datetime, **changes: Any
    ) -> None:
        changes = {"last_error": result.error, "last_status_code": result.status_code, **changes}
        with transaction.atomic():
            rows = Delivery.objects.filter(pk=self.pk, status=self.Status.IN_FLIGHT, lease_token=lease_token)
            if not rows.update(lease_token=None, lease_expires_at=None, **changes):
                raise StaleLease(f"delivery {self.pk}: lease {lease_token} no longer holds it; outcome dropped")
            self._record_attempt(result, started_at)
        self._apply(lease_token=None, lease_expires_at=None, **changes)

    def release_expired(self, now: datetime) -> bool:
        """An in-flight row whose lease expired goes back to pending (failed if out of attempts)."""
        exhausted = self.attempt_count >= self.max_attempts
        changes: dict[str, Any] = {"last_error": LOST_ATTEMPT, "last_status_code": None}
        if exhausted:
            changes.update(status=self.Status.FAILED, completed_at=now)
        else:
            # Due at once: the expired lease already waited longer than one attempt may take.
            changes.update(status=self.Status.PENDING, next_attempt_at=now)
        with transaction.atomic():
            rows = Delivery.objects.filter(
                pk=self.pk, status=self.Status.IN_FLIGHT, lease_token=self.lease_token, lease_expires_at__lt=now
            )
            if not rows.update(lease_token=None, lease_expires_at=None, **changes):
                return False
            DeliveryAttempt.objects.create(
                delivery=self,
                number=self.attempt_count,
                started_at=self.claimed_at or now,
                duration_ms=0,
                error_class="lease_expired",
                error=LOST_ATTEMPT,
            )
        self._apply(lease_token=None, lease_expires_at=None, **changes)
        return True

    def redeliver(self, now: datetime, max_attempts: int) -> None:
        """A new attempt series under the same id, due now; raise DeliveryInFlight while one is being sent."""
        changes: dict[str, Any] = {
            "status": self.Status.PENDING,
            "attempt_count": 0,
            "max_attempts": max_attempts,
            "next_attempt_at": now,
            "completed_at": None,
            "last_error": "",
            "last_status_code": None,
        }
        settled = (self.Status.PENDING, self.Status.DELIVERED, self.Status.FAILED)
        if not Delivery.objects.filter(pk=self.pk, status__in=settled).update(**changes):
            raise DeliveryInFlight(f"delivery {self.pk} is being sent right now; redeliver it once that attempt ends")
        self._apply(**changes)

    def restart(self, body: bytes, now: datetime, max_attempts: int) -> None:
        """Replace the body and start over, whatever the state (a re-run execution finished again)."""
        changes: dict[str, Any] = {
            "body": body,
            "status": self.Status.PENDING,
            "attempt_count": 0,
            "max_attempts": max_attempts,
            "next_attempt_at": now,
            "completed_at": None,
            "lease_token": None,  # fences out a worker still sending the old body
            "lease_expires_at": None,
            "last_error": "",
            "last_status_code": None,
        }
        Delivery.objects.filter(pk=self.pk).update(**changes)
        self._apply(**changes)

    def _record_attempt(self, result: DeliveryResult, started_at: datetime) -> DeliveryAttempt:
        return DeliveryAttempt.objects.create(
            delivery=self,
            number=self.attempt_count,
            started_at=started_at,
            duration_ms=max(result.duration_ms, 0),
            status_code=result.status_code,
            error_class=result.error_class or "",
            error=result.error,
            response_body=result.response_body,
            succeeded=result.ok,
        )

    def _apply(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)


class DeliveryAttempt(models.Model):
    """What happened on one try (never the secret)."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.IntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=32, blank=True, default="")
    error = models.TextField(blank=True, default="")
    response_body = models.TextField(blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["delivery", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
