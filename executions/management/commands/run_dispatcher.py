"""`manage.py run_dispatcher`: claim queued executions, call agents, deliver webhooks and notices to agents."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from argparse import ArgumentParser
from typing import Any

import prometheus_client
from django.conf import settings
from django.core.management.base import BaseCommand

from agentfield_project import metrics
from executions.dispatcher import ExecutionDispatcher
from executions.housekeeping import Housekeeper
from executions.notices import NoticeWorker
from executions.runner import Runner
from executions.schedules import Scheduler
from executions.wakeup import Wakeup
from webhooks.worker import DeliveryWorker


class Command(BaseCommand):
    help = "Dispatch queued executions to agents and deliver webhooks until stopped (SIGTERM/SIGINT)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None, help="Agent calls in flight at once.")
        parser.add_argument("--once", action="store_true", help="Exit when there is nothing left to do.")
        parser.add_argument("--no-listen", action="store_true", help="Poll only (e.g. behind PgBouncer).")
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=None,
            help="Serve Prometheus metrics here (default: AGENTFIELD_DISPATCHER_METRICS_PORT; 0: off).",
        )

    def handle(
        self, *args: Any, concurrency: int | None, once: bool, no_listen: bool, metrics_port: int | None, **options: Any
    ) -> None:
        # A random id per process start: a restarted dispatcher must never look like the old one.
        worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        listen = settings.AGENTFIELD_DISPATCHER_LISTEN and not no_listen
        wakeup = Wakeup([ExecutionDispatcher.channel, DeliveryWorker.channel, NoticeWorker.channel], listen=listen)
        dispatcher = ExecutionDispatcher(
            worker_id,
            concurrency,
            on_wake=lambda: wakeup.poke(ExecutionDispatcher.channel),
            heard=lambda: wakeup.heard(ExecutionDispatcher.channel),
        )
        deliveries = DeliveryWorker(
            worker_id, settings.AGENTFIELD_WEBHOOK_CONCURRENCY, on_wake=lambda: wakeup.poke(DeliveryWorker.channel)
        )
        agent_notices = NoticeWorker(on_wake=lambda: wakeup.poke(NoticeWorker.channel))
        port = settings.AGENTFIELD_DISPATCHER_METRICS_PORT if metrics_port is None else metrics_port
        if port:
            prometheus_client.start_http_server(port, addr=settings.AGENTFIELD_DISPATCHER_METRICS_HOST)
            metrics.IN_FLIGHT.set_function(lambda: dispatcher.in_flight)
            self.stderr.write(f"metrics on http://{settings.AGENTFIELD_DISPATCHER_METRICS_HOST}:{port}/metrics")
        runner = Runner(
            [dispatcher, deliveries, agent_notices, Scheduler(), Housekeeper()],
            wakeup,
            settings.AGENTFIELD_DISPATCHER_POLL_SECONDS,
        )

        def stop(signum: int, frame: Any) -> None:
            if runner.stopping:  # a second signal: stop waiting for agent calls
                raise SystemExit(1)
            runner.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stderr.write(f"dispatcher {worker_id} started (listen={listen})")
        runner.run(once=once)
        dispatcher.drain(timeout=settings.AGENTFIELD_AGENT_CALL_TIMEOUT_SECONDS)
        deliveries.close(timeout=settings.AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS)
        agent_notices.close()
        self.stderr.write(f"dispatcher {worker_id} stopped")
