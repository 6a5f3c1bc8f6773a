"""The delivery queue: the only place that locks Delivery rows.

Both functions hold their transaction for a few milliseconds and never across network I/O: a
claim commits before any POST, so a slow receiver never pins row locks or the xmin horizon.
SKIP LOCKED lets any number of workers claim and reap side by side without waiting on each other.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from webhooks.models import Delivery

# NOTIFY'd when a delivery becomes due, so an idle dispatcher wakes without waiting for its poll.
CHANNEL = "agentfield_deliveries"
REAP_BATCH = 100


def lease_seconds() -> float:
    """How long a claim may stay in flight: one attempt's deadline plus a safety margin."""
    return settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS + settings.AGENTFIELD_WEBHOOK_LEASE_MARGIN_SECONDS


def claim_due(worker_id: str, now: datetime, limit: int) -> list[Delivery]:
    """Mark up to `limit` due pending deliveries in_flight for `worker_id` under one fresh lease."""
    if limit <= 0:
        return []
    token = uuid.uuid4()
    # Short on purpose: lock, mark, commit; the HTTP happens after this transaction has ended.
    with transaction.atomic():
        due = (
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at")  # matches the partial index delivery_due_idx
            .values_list("id", flat=True)[:limit]
        )
        ids = list(due)
        if not ids:
            return []
        Delivery.objects.filter(id__in=ids).update(
            status=Delivery.Status.IN_FLIGHT,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds()),
            claimed_by=worker_id,
            claimed_at=now,
            attempt_count=F("attempt_count") + 1,
        )
    claimed = Delivery.objects.select_related("webhook").filter(id__in=ids, lease_token=token)
    return sorted(claimed, key=lambda delivery: (delivery.next_attempt_at, str(delivery.id)))


def reap_expired(now: datetime) -> int:
    """Put in_flight rows whose lease expired back to pending (failed when out of attempts); idempotent."""
    # Short on purpose, like the claim; SKIP LOCKED so two reapers never both release one row.
    with transaction.atomic():
        expired = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=Delivery.Status.IN_FLIGHT, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:REAP_BATCH]
        )
        released = sum(1 for delivery in expired if delivery.release_expired(now))
    if released:
        wake()
    return released


def wake() -> None:
    """NOTIFY the dispatchers (delivered when the surrounding transaction commits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
