"""OpenAPI descriptions of the node routes (drf-spectacular): response shapes and the API-key scheme."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="readable message")
    code = serializers.CharField()
    fields = serializers.DictField(required=False, help_text="per-field details of a validation error")


class RegisteredSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    node_id = serializers.CharField()
    resolved_base_url = serializers.CharField()
    restarted = serializers.BooleanField(
        help_text="true when this instance replaced one at its address or one no longer alive: a process restarted"
    )


class NodeInstanceSerializer(serializers.Serializer):
    """The shape of `instance_representation`: one process serving the node."""

    instance_id = serializers.CharField()
    base_url = serializers.CharField()
    health_status = serializers.ChoiceField(choices=["active", "inactive", "offline"])
    lifecycle_status = serializers.ChoiceField(choices=["starting", "ready", "degraded", "offline"])
    registered_at = serializers.DateTimeField()
    last_heartbeat = serializers.DateTimeField()
    shutdown_at = serializers.DateTimeField(allow_null=True)


class NodeSerializer(serializers.Serializer):
    """The shape of `node_representation`."""

    id = serializers.CharField()
    team_id = serializers.CharField(allow_blank=True)  # "" when the agent sent none
    base_url = serializers.CharField()
    version = serializers.CharField(allow_blank=True)
    deployment_type = serializers.CharField(allow_blank=True)
    instance_id = serializers.CharField(allow_blank=True)
    reasoners = serializers.ListField(child=serializers.DictField())
    skills = serializers.ListField(child=serializers.DictField())
    communication_config = serializers.DictField()
    features = serializers.DictField()
    metadata = serializers.DictField()
    health_status = serializers.ChoiceField(choices=["active", "inactive", "offline"])
    lifecycle_status = serializers.ChoiceField(choices=["starting", "ready", "degraded", "offline"])
    last_heartbeat = serializers.DateTimeField()
    registered_at = serializers.DateTimeField()
    restarted_at = serializers.DateTimeField(allow_null=True)
    shutdown_at = serializers.DateTimeField(allow_null=True)
    instances = NodeInstanceSerializer(many=True)


class NodeListSerializer(serializers.Serializer):
    nodes = NodeSerializer(many=True)
    count = serializers.IntegerField()
    filters = serializers.DictField(child=serializers.CharField())


class HeartbeatAckSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    timestamp = serializers.DateTimeField()


class ShutdownAckSerializer(serializers.Serializer):
    lease_seconds = serializers.IntegerField()
    next_lease_renewal = serializers.DateTimeField()
    message = serializers.CharField()


class HealthCheckSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    message = serializers.CharField()


class HealthChecksSerializer(serializers.Serializer):
    storage = HealthCheckSerializer()


class HealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["healthy", "unhealthy"])
    timestamp = serializers.DateTimeField()
    checks = HealthChecksSerializer()


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "nodes.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "Required once an API key exists (`manage.py create_api_key`); "
            "`Authorization: Bearer <key>` works too.",
        }
