"""Node registration input and node output, in the shapes the SDK sends and reads."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agentfield_project.timestamps import rfc3339
from nodes import client
from nodes.models import Node, NodeInstance


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers instead of turning them into strings."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


ENTRY_ID_PATTERN = r"^[^./\x00-\x20](?:[^./]*[^./\x00-\x20])?$"


@extend_schema_field({"type": "string", "maxLength": 255, "pattern": ENTRY_ID_PATTERN})
class EntryIdField(StrictCharField):
    pass


class EntrySerializer(serializers.Serializer):
    """A reasoner or skill: an object with a string `id`; everything else is kept as sent."""

    id = EntryIdField(max_length=255, trim_whitespace=False)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object with an 'id'")
        super().to_internal_value(data)
        if "." in data["id"] or "/" in data["id"]:
            raise serializers.ValidationError("id must not contain '.' or '/'")
        if not re.fullmatch(ENTRY_ID_PATTERN, data["id"]):
            raise serializers.ValidationError("id must not be blank or have surrounding spaces")
        return data


# The rules of validate_id and validate_base_url, as patterns for the OpenAPI schema.
NODE_ID_PATTERN = r"^[^./\x00-\x20](?:[^./\x00-\x1f]*[^./\x00-\x20])?$"
BASE_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%!$&'()*+,;=-]+"
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
    r"(?:/[^\x00-\x20?#]*)?$"
)


@extend_schema_field({"type": "string", "maxLength": 255, "pattern": NODE_ID_PATTERN})
class NodeIdField(StrictCharField):
    pass


@extend_schema_field({"type": "string", "maxLength": 2048, "pattern": BASE_URL_PATTERN})
class BaseUrlField(StrictCharField):
    pass


class RegistrationSerializer(serializers.Serializer):
    id = NodeIdField(max_length=255, trim_whitespace=False)
    base_url = BaseUrlField(max_length=2048)
    team_id = StrictCharField(max_length=255, required=False, allow_blank=True)
    version = StrictCharField(max_length=255, required=False, allow_blank=True)
    deployment_type = StrictCharField(max_length=64, required=False, allow_blank=True)
    instance_id = StrictCharField(max_length=255, required=False, allow_blank=True)
    lifecycle_status = serializers.ChoiceField(choices=Node.Lifecycle.choices, required=False, allow_blank=True)
    reasoners = EntrySerializer(many=True, required=False)
    skills = EntrySerializer(many=True, required=False)
    communication_config = serializers.DictField(required=False)
    features = serializers.DictField(required=False)
    metadata = serializers.DictField(required=False)

    def validate_id(self, value: str) -> str:
        if "." in value:
            raise serializers.ValidationError("must not contain '.' (targets are 'node.reasoner')")
        if "/" in value or any(ord(ch) < 32 for ch in value):
            raise serializers.ValidationError("must not contain '/' or control characters")
        if not re.fullmatch(NODE_ID_PATTERN, value):
            raise serializers.ValidationError("must be a non-empty id without surrounding spaces")
        return value

    def validate_base_url(self, value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as exc:
            raise serializers.ValidationError(f"is not a valid URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise serializers.ValidationError(f"must use http or https, got: {parts.scheme or 'no scheme'}")
        if not parts.hostname:
            raise serializers.ValidationError("must include a host")
        if "?" in value or "#" in value:
            # `{base_url}/reasoners/{name}` must stay a path under it: a query would swallow it.
            raise serializers.ValidationError("must not contain a query string or a fragment")
        if not re.fullmatch(BASE_URL_PATTERN, value):
            raise serializers.ValidationError("must be an http(s) URL with a plain host name (no user, no spaces)")
        try:
            client.agent_address(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except client.InvalidAgentUrl as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value.rstrip("/")


class HeartbeatSerializer(serializers.Serializer):
    """Heartbeat bodies are optional and loosely typed; `status` and `instance_id` are used."""

    status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    instance_id = serializers.CharField(required=False, allow_blank=True, max_length=255, trim_whitespace=False)


# The serializer's fields, bound once: a heartbeat is the most frequent request of every agent, and
# building a serializer deep-copies its fields each time (a tenth of a heartbeat's CPU). Validating
# a value does not change a field, so one set serves every thread.
_BEAT_FIELDS = HeartbeatSerializer().fields


def beat_fields(body: object) -> tuple[str | None, str | None]:
    """(lifecycle status, instance id) of a heartbeat or shutdown body; None for what is absent or unusable.

    HeartbeatSerializer's validation, field by field, as `is_valid()` runs it (tests hold the two equal).
    """
    data = body if isinstance(body, dict) else {}
    values: dict[str, Any] = {}
    for name, field in _BEAT_FIELDS.items():
        try:
            values[name] = field.run_validation(data.get(name, serializers.empty))
        except serializers.SkipField:
            continue
        except serializers.ValidationError:
            return None, None  # one bad field makes the whole body unusable, as is_valid() says
    return values.get("status"), values.get("instance_id")


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
        "last_heartbeat": rfc3339(node.last_heartbeat_at),
        "registered_at": rfc3339(node.registered_at),
        "restarted_at": rfc3339(node.restarted_at),
        "shutdown_at": rfc3339(node.shutdown_at),
        "instances": [instance_representation(instance, now) for instance in node.instances.all()],
    }


def instance_representation(instance: NodeInstance, now: datetime) -> dict:
    """One process serving the node: its address and its own liveness."""
    return {
        "instance_id": instance.instance_id,
        "base_url": instance.base_url,
        "health_status": instance.health_status(now, settings.AGENTFIELD_NODE_LIVENESS_SECONDS),
        "lifecycle_status": instance.lifecycle_status,
        "registered_at": rfc3339(instance.registered_at),
        "last_heartbeat": rfc3339(instance.last_heartbeat_at),
        "shutdown_at": rfc3339(instance.shutdown_at),
    }
