"""The node registry: agent processes that registered their reasoners and skills with us."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q

from nodes import liveness


class NodeQuerySet(models.QuerySet):
    """Liveness filters shared by nodes (their newest heartbeat) and their instances."""

    def alive(self, now: datetime, window_seconds: float) -> NodeQuerySet:
        """Rows heart-beating within the window and not shut down (`liveness.is_alive` as a filter)."""
        return self.filter(shutdown_at__isnull=True, last_heartbeat_at__gt=liveness.cutoff(now, window_seconds))

    def with_health(self, health: str, now: datetime, window_seconds: float) -> NodeQuerySet:
        """Rows whose derived health status (`liveness.health_status`) is `health`."""
        cutoff = liveness.cutoff(now, window_seconds)
        if health == liveness.OFFLINE:
            return self.filter(shutdown_at__isnull=False)
        if health == liveness.ACTIVE:
            return self.filter(shutdown_at__isnull=True, last_heartbeat_at__gt=cutoff)
        if health == liveness.INACTIVE:
            return self.filter(Q(shutdown_at__isnull=True) & ~Q(last_heartbeat_at__gt=cutoff))
        return self.none()


class Node(models.Model):
    """One agent node (`id` is the SDK's node_id); re-registration upserts it."""

    class Lifecycle(models.TextChoices):
        STARTING = "starting", "Starting"
        READY = "ready", "Ready"
        DEGRADED = "degraded", "Degraded"
        OFFLINE = "offline", "Offline"

    id = models.CharField(primary_key=True, max_length=255)
    team_id = models.CharField(max_length=255, blank=True, default="")
    base_url = models.URLField(max_length=2048)
    version = models.CharField(max_length=255, blank=True, default="")
    deployment_type = models.CharField(max_length=64, blank=True, default="")
    reasoners = models.JSONField(default=list, blank=True)
    skills = models.JSONField(default=list, blank=True)
    # The most recently registered instance (see NodeInstance for each process that serves the node).
    instance_id = models.CharField(max_length=255, blank=True, default="")
    lifecycle_status = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.STARTING)
    communication_config = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Concurrency limits (executions/limits.py): in-flight executions of the node, and per reasoner
    # or skill name. Set in the admin, or by the agent's registration metadata.
    max_concurrency = models.PositiveIntegerField(null=True, blank=True)
    target_concurrency = models.JSONField(default=dict, blank=True)
    # The agent key that serves this node id: the first agent key that registered it, or the one an
    # admin bound it to. Only that key may register it again, heart-beat for it or report on its
    # work (nodes/policy.py). Null: registered while no key existed, or by an admin.
    owner_key = models.ForeignKey(
        "ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes_owned",
        help_text="The agent key that serves this node (set by its first registration with an agent key).",
    )  # fmt: skip
    registered_at = models.DateTimeField()
    restarted_at = models.DateTimeField(null=True, blank=True)
    # Summaries of the node's instances: the newest heartbeat of any of them, and the moment the
    # last live one shut down (the node is offline then).
    last_heartbeat_at = models.DateTimeField()
    shutdown_at = models.DateTimeField(null=True, blank=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id

    def health_status(self, now: datetime, window_seconds: float) -> str:
        """active / inactive / offline, derived from the last heartbeat and shutdown."""
        return liveness.health_status(self.last_heartbeat_at, self.shutdown_at, now, window_seconds)

    def reasoner_ids(self) -> list[str]:
        return [entry.get("id", "") for entry in self.reasoners if isinstance(entry, dict)]

    def skill_ids(self) -> list[str]:
        return [entry.get("id", "") for entry in self.skills if isinstance(entry, dict)]

    def target_type(self, name: str) -> str | None:
        """'reasoner' or 'skill' for a name this node serves (reasoners first), else None."""
        if name in self.reasoner_ids():
            return "reasoner"
        if name in self.skill_ids():
            return "skill"
        return None


class NodeInstance(models.Model):
    """One agent process serving a node: it heart-beats, is alive or not, and receives work on its own.

    Several processes may serve one node id (an agent scaled out); each registers with its own
    `instance_id` (a fresh uuid per SDK process) and `base_url`. Liveness and dispatch are per
    instance, so the death of one re-queues exactly the work it held. A new instance registering
    at the `base_url` of an existing one is that process restarted: the old row is replaced.
    """

    # No index of its own: the unique (node, instance_id) index serves lookups by node.
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="instances", db_index=False)
    instance_id = models.CharField(max_length=255, blank=True, default="")
    base_url = models.URLField(max_length=2048)
    lifecycle_status = models.CharField(max_length=16, choices=Node.Lifecycle.choices, default=Node.Lifecycle.STARTING)
    registered_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField()
    shutdown_at = models.DateTimeField(null=True, blank=True)

    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["node_id", "registered_at"]
        constraints = [models.UniqueConstraint(fields=["node", "instance_id"], name="node_instance_unique")]

    def __str__(self) -> str:
        return f"{self.node_id}/{self.instance_id or '-'}"

    def health_status(self, now: datetime, window_seconds: float) -> str:
        return liveness.health_status(self.last_heartbeat_at, self.shutdown_at, now, window_seconds)


class ApiKey(models.Model):
    """A credential with a role (nodes/policy.py): only the SHA-256 of the key is stored, the key is shown once."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin: everything"
        CLIENT = "client", "Client: fires executions, sees its own"
        AGENT = "agent", "Agent: serves its nodes"

    name = models.CharField(max_length=100)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.CLIENT)
    # Node ids reserved for this agent key before they first register (`create_api_key --nodes`).
    node_ids = models.JSONField(
        default=list, blank=True, help_text="Agent keys: node ids only this key may register (others claim theirs)."
    )
    # The first characters of the key, shown in admin so a leaked key can be recognised.
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def revoke(self, now: datetime) -> bool:
        """Revoke the key once (conditional UPDATE); False when it was already revoked."""
        revoked = bool(ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now))
        if revoked:
            self.revoked_at = now
        return revoked
