"""Scenario 7: webhook deliveries per second to a receiver on loopback.

N pending deliveries (signed, ~300 B bodies) are inserted in bulk before the clock starts;
`manage.py run_dispatcher` (whose delivery loop is `webhooks.worker.DeliveryWorker`) drains
them to the stub receiver. Rate from the receiver's first request to the last `delivered` mark.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from bench import ours, procs
from bench.report import Row, progress

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, as Standard Webhooks expects


def _enqueue(bench: ours.Bench, count: int) -> None:
    from django.db import transaction

    from webhooks.models import Delivery, Webhook

    now = datetime.now(UTC)
    ids = [f"exec_hook_{index}" for index in range(count)]
    body = json.dumps({"event": "execution.completed", "status": "succeeded", "result": {"pad": "x" * 200}}).encode()
    with transaction.atomic():
        hooks = Webhook.objects.bulk_create(
            [Webhook(execution_id=i, url=f"{bench.stub.url}/hook", secret=SECRET, created_at=now) for i in ids]
        )
        Delivery.objects.bulk_create(
            [
                Delivery(
                    webhook=hook,
                    execution_id=hook.execution_id,
                    event="execution.completed",
                    body=body,
                    next_attempt_at=now,
                    created_at=now,
                )
                for hook in hooks
            ],
            batch_size=2000,
        )


def _delivered() -> int:
    from webhooks.models import Delivery

    return Delivery.objects.filter(status=Delivery.Status.DELIVERED).count()


def _last_delivered() -> float:
    from django.db.models import Max

    from webhooks.models import Delivery

    return Delivery.objects.aggregate(last=Max("completed_at"))["last"].timestamp()


def run(ctx) -> list[Row]:
    ours.require("webhooks.worker", "the webhook delivery worker")
    bench = ours.Bench.start(ctx.server)
    row = Row(
        "7",
        "webhooks → loopback receiver",
        "deliveries/s",
        "deliv/s",
        note=f"{ctx.webhooks:,} pending deliveries, 1 run_dispatcher",
    )
    try:
        for rep in range(ctx.repeat):
            bench.reset()
            _enqueue(bench, ctx.webhooks)
            dispatcher = bench.start_dispatcher(AGENTFIELD_WEBHOOK_ALLOWED_CIDRS="127.0.0.1/32")
            procs.watch([dispatcher], _delivered, ctx.webhooks, "webhooks", timeout=1800)
            dispatcher.stop()
            bench.dispatchers.remove(dispatcher)
            if _delivered() != ctx.webhooks:
                raise RuntimeError(f"delivered {_delivered()} of {ctx.webhooks}:\n{dispatcher.output()}")
            row.samples.append(ctx.webhooks / (_last_delivered() - bench.stub.stats()["first"]))
            progress(f"7 rep {rep + 1}/{ctx.repeat}: {row.samples[-1]:,.0f} deliveries/s")
            time.sleep(0.5)
    finally:
        bench.stop()
    return [row]
