"""Prometheus metrics: the control plane's state from PostgreSQL, and each dispatcher's own counters.

`GET /metrics` (any server) reads the state at scrape time from the database: queue depth by
status and node, the age of the oldest due execution, work held by each dispatcher, webhook
deliveries, pending approvals and notices, node instances by health, and this process's
connection pool. Counters and histograms of what happens (dispatches, agent calls, outcomes,
webhook attempts) live in the process that does it: `run_dispatcher --metrics-port P` serves them
(one port per dispatcher, like any worker pool; sum them in PromQL).
"""

from __future__ import annotations

import hmac

import prometheus_client
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from nodes import auth, liveness, policy

# -- what the server reads from the database at scrape time ------------------------------------------

_QUEUE = """
SELECT node_id, status, count(*) FROM executions_execution
 WHERE status IN ('queued', 'running', 'waiting') GROUP BY node_id, status
"""
_OLDEST_DUE = "SELECT extract(epoch FROM now() - min(run_at)) FROM executions_execution WHERE status = 'queued' AND run_at <= now()"
_HELD = """
SELECT claimed_by, count(*) FROM executions_execution
 WHERE status = 'queued' AND lease_token IS NOT NULL GROUP BY claimed_by
"""
_DELIVERIES = "SELECT status, count(*) FROM webhooks_delivery WHERE status <> 'delivered' GROUP BY status"
_SMALL = {
    "agentfield_approvals_pending": ("Approvals waiting for a decision", "SELECT count(*) FROM executions_approval WHERE status = 'pending'"),
    "agentfield_agent_notices_pending": ("Cancels and decisions not yet taken by an agent", "SELECT count(*) FROM executions_agentnotice WHERE status = 'pending'"),
}  # fmt: skip


# (name, help, label names, query returning the label values then the count)
_LABELLED = (
    ("agentfield_executions", "Active executions by node and status", ["node", "status"], _QUEUE),
    ("agentfield_executions_being_dispatched", "Leased hand-offs by dispatcher", ["dispatcher"], _HELD),
    ("agentfield_webhook_deliveries", "Undelivered webhook deliveries by status", ["status"], _DELIVERIES),
)


class StateCollector:
    """Reads the state when Prometheus scrapes (a handful of small indexed queries)."""

    def collect(self):
        # After a prune of millions of rows the planner's costs (from the table's size in pages)
        # cross the JIT threshold and PostgreSQL compiled these 2 ms queries on every scrape
        # (7-14 ms of JIT, bench scenario 10): off, for this transaction only.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            for name, help_text, labels, sql in _LABELLED:
                family = GaugeMetricFamily(name, help_text, labels=labels)
                cursor.execute(sql)
                for *values, count in cursor.fetchall():
                    family.add_metric(values, count)
                yield family
            cursor.execute(_OLDEST_DUE)
            age = cursor.fetchone()[0]
            yield GaugeMetricFamily(
                "agentfield_oldest_due_execution_age_seconds",
                "How long the oldest due queued execution has waited",
                float(age or 0),
            )
            for name, (help_text, sql) in _SMALL.items():
                cursor.execute(sql)
                yield GaugeMetricFamily(name, help_text, cursor.fetchone()[0])
        yield from _instances()
        yield from _pool()


def _instances():
    from nodes.models import NodeInstance

    window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
    now = timezone.now()
    counts = dict.fromkeys(liveness.HEALTH_STATUSES, 0)
    for beat, shutdown in NodeInstance.objects.values_list("last_heartbeat_at", "shutdown_at"):
        counts[liveness.health_status(beat, shutdown, now, window)] += 1
    family = GaugeMetricFamily("agentfield_node_instances", "Agent processes by health", labels=["health"])
    for health, count in counts.items():
        family.add_metric([health], count)
    yield family


def _pool():
    pool = getattr(connection, "pool", None)
    if pool is None:
        return
    stats = pool.get_stats()
    for key, help_text in (("pool_size", "connections held"), ("pool_available", "idle connections"),
                           ("requests_waiting", "requests waiting for a connection")):  # fmt: skip
        yield GaugeMetricFamily(f"agentfield_db_{key}", f"This server process's pool: {help_text}", stats.get(key, 0))


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(StateCollector())


def may_scrape(request: HttpRequest) -> bool:
    """Staff, an admin key, the metrics token, or anyone while no key exists (like the API)."""
    token = settings.AGENTFIELD_METRICS_TOKEN
    presented = auth.presented_key(request)
    if token and presented and hmac.compare_digest(presented, token):
        return True
    principal = auth.authenticate_request(request)
    return principal is not None and (principal.role == policy.ADMIN)


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not may_scrape(request):
        return JsonResponse(
            {"error": "metrics need an admin key, staff, or AGENTFIELD_METRICS_TOKEN", "code": "not_authenticated"},
            status=401,
        )
    own = generate_latest(prometheus_client.REGISTRY)  # this process's counters (agentfield_project/metrics.py)
    return HttpResponse(generate_latest(REGISTRY) + own, content_type=CONTENT_TYPE_LATEST)
