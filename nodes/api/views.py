"""JSON API of the node registry."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes import liveness, services
from nodes.api.serializers import HeartbeatSerializer, RegistrationSerializer, node_representation
from nodes.exceptions import NodeNotFound
from nodes.models import Node


class NodeListView(APIView):
    """GET: list nodes (active only unless `show_all` or `health_status`); POST: register."""

    def get(self, request):
        now = timezone.now()
        window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
        nodes = Node.objects.order_by("-registered_at", "id")
        filters: dict[str, str] = {}
        show_all = request.query_params.get("show_all", "").lower() in ("1", "true", "yes")
        health = request.query_params.get("health_status", "" if show_all else liveness.ACTIVE)
        if health:
            if health not in liveness.HEALTH_STATUSES:
                raise ValidationError({"health_status": f"must be one of {', '.join(liveness.HEALTH_STATUSES)}"})
            nodes = nodes.with_health(health, now, window)
            filters["health_status"] = health
        if team := request.query_params.get("team_id"):
            nodes = nodes.filter(team_id=team)
            filters["team_id"] = team
        items = [node_representation(node, now) for node in nodes[:1000]]
        return Response({"nodes": items, "count": len(items), "filters": filters})

    def post(self, request):
        return register(request)


class RegisterView(APIView):
    def post(self, request):
        return register(request)


def register(request) -> Response:
    if not isinstance(request.data, dict):
        raise ValidationError("registration body must be a JSON object")
    serializer = RegistrationSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    node, restarted = services.register_node(serializer.validated_data, timezone.now())
    body = {
        "success": True,
        "message": "Node registered successfully",
        "node_id": node.id,
        "resolved_base_url": node.base_url,
        "restarted": restarted,
    }
    return Response(body, status=status.HTTP_201_CREATED)


class NodeDetailView(APIView):
    def get(self, request, node_id: str):
        node = Node.objects.filter(pk=node_id).first()
        if node is None:
            raise NodeNotFound(f"node '{node_id}' not found")
        return Response(node_representation(node, timezone.now()))


class HeartbeatView(APIView):
    def post(self, request, node_id: str):
        data = request.data if isinstance(request.data, dict) else {}
        serializer = HeartbeatSerializer(data=data)
        lifecycle = serializer.validated_data.get("status") if serializer.is_valid() else None
        now = timezone.now()
        services.record_heartbeat(node_id, lifecycle, now)
        return Response({"success": True, "message": "heartbeat received", "timestamp": now.isoformat()})


class ShutdownView(APIView):
    def post(self, request, node_id: str):
        services.shutdown(node_id, timezone.now())
        body = {
            "lease_seconds": 0,
            "next_lease_renewal": timezone.now().isoformat(),
            "message": "shutdown acknowledged",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class HealthView(APIView):
    """Liveness of the control plane and its database (503 when the database does not answer)."""

    # Open to load balancers without a key, and must not touch the database before its own check.
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        now = timezone.now()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            storage = {"status": "healthy", "message": "database is responsive"}
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            storage = {"status": "unhealthy", "message": f"database error: {exc.__class__.__name__}"}
        healthy = storage["status"] == "healthy"
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": now.isoformat(),
            "checks": {"storage": storage},
        }
        return Response(body, status=200 if healthy else 503)
