"""JSON API of the node registry."""

from __future__ import annotations

import json

from django.conf import settings
from django.db import connection
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agentfield_project.postgres import availability
from agentfield_project.timestamps import rfc3339
from nodes import liveness, services
from nodes.api import schema
from nodes.api.serializers import RegistrationSerializer, beat_fields, node_representation
from nodes.auth import principal_of
from nodes.exceptions import NodeNotFound
from nodes.models import Node

ERRORS = {400: schema.ErrorSerializer, 401: schema.ErrorSerializer, 429: schema.ErrorSerializer}
REGISTER_SCHEMA = extend_schema(
    request=RegistrationSerializer,
    responses={201: schema.RegisteredSerializer, 413: schema.ErrorSerializer, 415: schema.ErrorSerializer, **ERRORS},
    summary="Register or re-register an agent node (upsert by id)",
)
LIST_PARAMETERS = [
    OpenApiParameter(
        "health_status",
        {"type": "string", "enum": ["", "active", "inactive", "offline"]},
        description="default: active",
    ),
    OpenApiParameter(
        "show_all",
        {"type": "string", "enum": ["", "true", "false", "1", "0", "yes", "no"]},
        description="every node, whatever its health",
    ),
    OpenApiParameter("team_id", str),
]


def _flag(request, name: str) -> bool:
    raw = request.query_params.get(name, "").lower()
    if raw not in ("", "1", "0", "true", "false", "yes", "no"):
        raise ValidationError({name: "must be true or false"})
    return raw in ("1", "true", "yes")


class NodeListView(APIView):
    """GET: list nodes (active only unless `show_all` or `health_status`); POST: register."""

    @property
    def throttle_scope(self) -> str:
        return "node" if self.request.method == "POST" else "query"  # POST is the SDK's older register

    @extend_schema(
        operation_id="nodes_list", parameters=LIST_PARAMETERS, responses={200: schema.NodeListSerializer, **ERRORS}
    )
    def get(self, request):
        now = timezone.now()
        window = settings.AGENTFIELD_NODE_LIVENESS_SECONDS
        nodes = Node.objects.order_by("-registered_at", "id")
        filters: dict[str, str] = {}
        show_all = _flag(request, "show_all")
        health = request.query_params.get("health_status", "" if show_all else liveness.ACTIVE)
        if health:
            if health not in liveness.HEALTH_STATUSES:
                raise ValidationError({"health_status": f"must be one of {', '.join(liveness.HEALTH_STATUSES)}"})
            nodes = nodes.with_health(health, now, window)
            filters["health_status"] = health
        if team := request.query_params.get("team_id"):
            nodes = nodes.filter(team_id=team)
            filters["team_id"] = team
        items = [node_representation(node, now) for node in nodes.prefetch_related("instances")[:1000]]
        return Response({"nodes": items, "count": len(items), "filters": filters})

    @REGISTER_SCHEMA
    def post(self, request):
        return register(request)


class RegisterView(APIView):
    throttle_scope = "node"

    @REGISTER_SCHEMA
    def post(self, request):
        return register(request)


def register(request) -> Response:
    if not isinstance(request.data, dict):
        raise ValidationError("registration body must be a JSON object")
    serializer = RegistrationSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    node, restarted = services.register_node(serializer.validated_data, timezone.now(), principal_of(request))
    body = {
        "success": True,
        "message": "Node registered successfully",
        "node_id": node.id,
        "resolved_base_url": node.base_url,
        "restarted": restarted,
    }
    return Response(body, status=status.HTTP_201_CREATED)


class NodeDetailView(APIView):
    @extend_schema(responses={200: schema.NodeSerializer, 404: schema.ErrorSerializer, **ERRORS})
    def get(self, request, node_id: str):
        node = Node.objects.filter(pk=node_id).first()
        if node is None:
            raise NodeNotFound(f"node '{node_id}' not found")
        return Response(node_representation(node, timezone.now()))


class HeartbeatView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py)
    throttle_scope = "node"

    @extend_schema(
        request=OpenApiTypes.ANY,
        responses={200: schema.HeartbeatAckSerializer, 404: schema.ErrorSerializer, **ERRORS},
        description="404 for an unknown node or instance: that is what makes an SDK agent register again. The "
        "body is optional and loosely read: `instance_id` names the beating process (without it every live "
        "instance of the node is refreshed); a `status` of starting, ready or degraded is recorded.",
    )
    def post(self, request, node_id: str):
        lifecycle, instance_id = beat_fields(request.data)
        now = timezone.now()
        services.record_heartbeat(node_id, instance_id, lifecycle, now, principal_of(request))
        return _beat_received(now)

    async def post_on_loop(self, request, node_id: str) -> Response | None:
        """`post` on the event loop, without a request thread (runtime/direct.py); None: the thread path answers."""
        lifecycle, instance_id = beat_fields(request.data)
        now = timezone.now()
        if not await services.record_heartbeat_on_loop(node_id, instance_id, lifecycle, now, principal_of(request)):
            return None
        return _beat_received(now)


def _beat_received(now) -> Response:
    return Response({"success": True, "message": "heartbeat received", "timestamp": rfc3339(now)})


class ShutdownView(APIView):
    throttle_scope = "node"

    @extend_schema(
        request=OpenApiTypes.ANY,
        description="The SDK sends `{reason, timeout_seconds}`; an `instance_id` names the process that stops "
        "(without one, the only live instance). The node is offline once no instance is alive.",
        responses={202: schema.ShutdownAckSerializer, 404: schema.ErrorSerializer, **ERRORS},
    )
    def post(self, request, node_id: str):
        services.shutdown(node_id, beat_fields(request.data)[1], timezone.now(), principal_of(request))
        body = {
            "lease_seconds": 0,
            "next_lease_renewal": rfc3339(timezone.now()),
            "message": "shutdown acknowledged",
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class HealthView(APIView):
    """Liveness of the control plane and its database (503 when the database does not answer)."""

    # Open to load balancers without a key, and must not touch the database before its own check.
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses={200: schema.HealthSerializer, 503: schema.HealthSerializer}, auth=[])
    def get(self, request):
        now = timezone.now()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
            if not availability.is_unavailable(exc):
                raise
            response = availability.unavailable_response(exc)
            storage = {"status": "unhealthy", "message": f"database error: {exc.__class__.__name__}"}
            body = json.loads(response.content) | {"status": "unhealthy", "timestamp": rfc3339(now)}
            response.content = json.dumps(body | {"checks": {"storage": storage}})
            return response
        storage = {"status": "healthy", "message": "database is responsive"}
        return Response({"status": "healthy", "timestamp": rfc3339(now), "checks": {"storage": storage}})


class DidRegisterView(APIView):
    """POST /api/v1/did/register: the SDK asks for DIDs at start-up; this control plane issues none.

    Issuing DIDs means generating signing keys for every agent and reasoner, handing out their
    private halves, and serving the verifiable-credential routes the SDK then calls: a credential
    system of its own, not a stub. The SDK logs this 404 once and runs without DIDs.
    """

    @extend_schema(request=OpenApiTypes.ANY, responses={404: schema.ErrorSerializer, **ERRORS})
    def post(self, request):
        message = (
            "this control plane issues no DIDs; the agent runs without them (Agent(enable_did=False) skips this call)"
        )
        return Response({"error": message, "code": "did_not_supported"}, status=status.HTTP_404_NOT_FOUND)
