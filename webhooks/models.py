"""Webhook registrations, the durable delivery queue, and one row per delivery attempt.

This app knows nothing of executions beyond their id (a plain string): the executions app
registers a webhook when it enqueues an execution and adds a delivery in the transaction that
makes the execution terminal.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class Webhook(models.Model):
    """The `webhook` block of one execution request."""

    execution_id = models.CharField(max_length=64, unique=True)
    url = models.URLField(max_length=2048)
    secret = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.execution_id} -> {self.url}"


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
