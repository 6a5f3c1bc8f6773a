"""Plain factories for webhook rows, made the way the executions app makes them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from webhooks import services
from webhooks.models import Delivery


def delivery(
    url: str,
    now: datetime,
    *,
    secret: str = "",
    headers: dict[str, str] | None = None,
    execution_id: str | None = None,
    event: str = "execution.completed",
    body: bytes | None = None,
) -> Delivery:
    """Register a webhook for a new execution id and enqueue its delivery, due at `now`."""
    execution_id = execution_id or f"exec_{uuid.uuid4().hex[:12]}"
    spec = services.parse_spec({"url": url, "secret": secret, "headers": headers or {}})
    services.register(execution_id, spec, now)
    if body is None:
        payload = {"event": event, "execution_id": execution_id, "status": "succeeded", "result": {"value": "<ü&>"}}
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return services.enqueue(execution_id, event, body, now)


class Clock:
    """A settable clock for the worker: time only moves when the test says so."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
