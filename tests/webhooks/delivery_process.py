"""A stand-alone delivery loop for crash tests: `python -m tests.webhooks.delivery_process`.

It drives `DeliveryWorker` the way `manage.py run_dispatcher` drives its loops (the same Runner
and LISTEN wake-up), without the execution dispatcher, so a test can SIGKILL just the webhook side.
"""

from __future__ import annotations

import os
import signal

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")
    django.setup()
    from django.conf import settings

    from executions.runner import Runner
    from executions.wakeup import Wakeup
    from webhooks.worker import DeliveryWorker

    wakeup = Wakeup([DeliveryWorker.channel])
    concurrency = settings.AGENTFIELD_WEBHOOK_CONCURRENCY
    worker = DeliveryWorker(f"test-delivery-{os.getpid()}", concurrency, on_wake=wakeup.poke)
    runner = Runner([worker], wakeup, settings.AGENTFIELD_DISPATCHER_POLL_SECONDS)
    signal.signal(signal.SIGTERM, lambda *_: runner.request_stop())
    print(f"delivery worker {os.getpid()} started", flush=True)
    runner.run()
    worker.close(timeout=settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS)


if __name__ == "__main__":
    main()
