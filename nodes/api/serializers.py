"""Node registration input and node output, in the shapes the SDK sends and reads."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from nodes.models import Node


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


class EntrySerializer(serializers.Serializer):
    """A reasoner or skill: an object with a string `id`; everything else is kept as sent."""

    id = serializers.CharField(max_length=255)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object with an 'id'")
        super().to_internal_value(data)
        if "." in data["id"] or "/" in data["id"]:
            raise serializers.ValidationError("id must not contain '.' or '/'")
        return data


class RegistrationSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=255, trim_whitespace=False)
    base_url = serializers.CharField(max_length=2048)
    team_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    version = serializers.CharField(max_length=255, required=False, allow_blank=True)
    deployment_type = serializers.CharField(max_length=64, required=False, allow_blank=True)
    instance_id = serializers.CharField(max_length=255, required=False, allow_blank=True)
    lifecycle_status = serializers.ChoiceField(choices=Node.Lifecycle.choices, required=False, allow_blank=True)
    reasoners = EntrySerializer(many=True, required=False)
    skills = EntrySerializer(many=True, required=False)
    communication_config = serializers.DictField(required=False)
    features = serializers.DictField(required=False)
    metadata = serializers.DictField(required=False)

    def validate_id(self, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise serializers.ValidationError("must be a non-empty id without surrounding spaces")
        if "." in value:
            raise serializers.ValidationError("must not contain '.' (targets are 'node.reasoner')")
        if "/" in value or any(ord(ch) < 32 for ch in value):
            raise serializers.ValidationError("must not contain '/' or control characters")
        return value

    def validate_base_url(self, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise serializers.ValidationError(f"must use http or https, got: {parts.scheme or 'no scheme'}")
        if not parts.hostname:
            raise serializers.ValidationError("must include a host")
        return value.rstrip("/")


class HeartbeatSerializer(serializers.Serializer):
    """Heartbeat bodies are optional and loosely typed; only `status` is used."""

    status = serializers.CharField(required=False, allow_blank=True, max_length=32)


def node_representation(node: Node, now: datetime) -> dict:
    """The node as GET /api/v1/nodes/{id} returns it."""
    health = node.health_status(now, settings.AGENTFIELD_NODE_LIVENESS_SECONDS)
    lifecycle = node.lifecycle_status
    if health == "active" and lifecycle == Node.Lifecycle.STARTING and node.last_heartbeat_at > node.registered_at:
        lifecycle = Node.Lifecycle.READY
    return {
        "id": node.id,
        "team_id": node.team_id,
        "base_url": node.base_url,
        "version": node.version,
        "deployment_type": node.deployment_type,
        "instance_id": node.instance_id,
        "reasoners": node.reasoners,
        "skills": node.skills,
        "communication_config": node.communication_config,
        "features": node.features,
        "metadata": node.metadata,
        "health_status": health,
        "lifecycle_status": lifecycle,
        "last_heartbeat": _iso(node.last_heartbeat_at),
        "registered_at": _iso(node.registered_at),
        "restarted_at": _iso(node.restarted_at),
        "shutdown_at": _iso(node.shutdown_at),
    }
