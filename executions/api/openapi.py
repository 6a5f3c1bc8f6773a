"""OpenAPI descriptions of the execution, memory and webhook routes, attached from outside their views.

drf-spectacular cannot guess the shapes of plain APIViews; the extensions below give each
execution view its request and response serializers without touching executions/api/views.py.
Imported by urls.py so the extensions are registered before a schema is generated.
The synchronous `POST /api/v1/execute/{target}` is a plain async Django view and is not listed.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers

from executions import statuses
from executions.callbacks import MAX_DURATION_MS, MAX_PROGRESS
from executions.models import Status
from nodes.api.schema import ErrorSerializer

# 429: the per-key rate limits (nodes/throttling.py).
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 413: ErrorSerializer, 415: ErrorSerializer, 429: ErrorSerializer}
NOT_FOUND = {404: ErrorSerializer}


class WebhookSpecSerializer(serializers.Serializer):
    url = serializers.CharField(
        required=False,
        help_text="http(s) URL that receives the signed completion event (a bad one is reported "
        "in `webhook_error` and the execution still runs)",
    )
    secret = serializers.CharField(required=False, help_text="signing secret (Standard Webhooks, `whsec_...`)")
    headers = serializers.DictField(child=serializers.CharField(), required=False)


class ExecuteRequestSerializer(serializers.Serializer):
    input = serializers.DictField(help_text="the reasoner's keyword arguments")
    context = serializers.DictField(required=False)
    webhook = WebhookSpecSerializer(required=False)
    delay_seconds = serializers.FloatField(
        required=False, min_value=0, max_value=366 * 86400, help_text="not dispatched before this delay"
    )
    run_at = serializers.DateTimeField(required=False, help_text="not dispatched before this moment (with a zone)")
    priority = serializers.IntegerField(
        required=False,
        min_value=-1000,
        max_value=1000,
        help_text="higher is claimed first (default: the parent's, else 0); runs take turns within a priority",
    )


class AcceptedSerializer(serializers.Serializer):
    execution_id = serializers.CharField()
    run_id = serializers.CharField()
    workflow_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    target = serializers.CharField()
    type = serializers.ChoiceField(choices=["reasoner", "skill"])
    created_at = serializers.DateTimeField()
    webhook_registered = serializers.BooleanField()
    webhook_error = serializers.CharField(required=False)
    run_at = serializers.DateTimeField(required=False, help_text="when a delayed execution becomes due")


class ExecutionSerializer(serializers.Serializer):
    execution_id = serializers.CharField()
    run_id = serializers.CharField()
    workflow_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    target = serializers.CharField()
    node_id = serializers.CharField()
    type = serializers.ChoiceField(choices=["reasoner", "skill"])
    parent_execution_id = serializers.CharField(allow_null=True)
    restarted_from = serializers.CharField(allow_null=True)
    session_id = serializers.CharField(allow_null=True)
    actor_id = serializers.CharField(allow_null=True)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    error_message = serializers.CharField(allow_null=True)
    error_details = serializers.JSONField(allow_null=True)
    progress = serializers.IntegerField(allow_null=True)
    priority = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(
        allow_null=True, help_text="from started_at to completed_at; while running, so far"
    )
    attempt = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    webhook_registered = serializers.BooleanField()
    webhook_events = serializers.ListField(child=serializers.DictField())


class CancelledSerializer(ExecutionSerializer):
    cancelled = serializers.ListField(child=serializers.CharField(), help_text="every id cancelled, newest first")


class RunCancelledSerializer(serializers.Serializer):
    run_id = serializers.CharField()
    cancelled = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()


class RestartRequestSerializer(serializers.Serializer):
    input = serializers.DictField(required=False, help_text="new input (default: the original's)")
    same_run = serializers.BooleanField(
        required=False, help_text="keep the original's run id, so the reasoner resumes from its checkpoints"
    )
    webhook = WebhookSpecSerializer(required=False, help_text="default: the original's webhook")


class ApprovalRequestSerializer(serializers.Serializer):
    approval_request_id = serializers.CharField(max_length=255)
    approval_request_url = serializers.CharField(required=False, help_text="where a person reviews the request")
    callback_url = serializers.CharField(
        required=False, help_text="where the decision goes: an address of the agent instance running the execution"
    )
    expires_in_hours = serializers.FloatField(required=False, min_value=0, max_value=24 * 365)


class ApprovalSerializer(serializers.Serializer):
    approval_request_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "approved", "rejected", "request_changes", "expired"])
    feedback = serializers.CharField()
    response = serializers.JSONField(allow_null=True)
    request_url = serializers.CharField()
    requested_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    responded_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approved", "rejected", "request_changes"])
    feedback = serializers.CharField(required=False)
    response = serializers.JSONField(required=False)
    approval_request_id = serializers.CharField(required=False, help_text="default: the latest request")


class AwaiterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["waiting", "running"])
    reason = serializers.CharField(required=False)


class ExecutionPageSerializer(serializers.Serializer):
    executions = ExecutionSerializer(many=True)
    count = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_offset = serializers.IntegerField(allow_null=True)


class BatchStatusRequestSerializer(serializers.Serializer):
    execution_ids = serializers.ListField(
        child=serializers.CharField(max_length=255, allow_blank=True, trim_whitespace=False), max_length=1000
    )


CALLBACK_STATUSES = sorted({*statuses.CANONICAL, *statuses.ALIASES})


class CallbackSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=CALLBACK_STATUSES, help_text="canonical SDK status or an alias (completed, error, ...)"
    )
    result = serializers.JSONField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_blank=True)
    error_message = serializers.CharField(required=False, allow_blank=True)
    error_details = serializers.JSONField(required=False, allow_null=True)
    duration_ms = serializers.FloatField(required=False, min_value=0, max_value=MAX_DURATION_MS)
    progress = serializers.IntegerField(required=False, min_value=-MAX_PROGRESS, max_value=MAX_PROGRESS)


class LogsSerializer(serializers.Serializer):
    """`{"entries": [...]}`, or one log entry object on its own."""

    entries = serializers.ListField(child=serializers.DictField(), max_length=100, required=False, allow_null=True)


class StepEventSerializer(serializers.Serializer):
    """Only `execution_id` is read; the other fields are kept in the trace as sent."""

    execution_id = serializers.CharField(max_length=255)
    status = serializers.JSONField(required=False)
    reasoner_id = serializers.JSONField(required=False)
    agent_node_id = serializers.JSONField(required=False)
    duration_ms = serializers.JSONField(required=False)
    error = serializers.JSONField(required=False)


@extend_schema_field({"type": "string", "pattern": r"\S"})
class NonBlankField(serializers.CharField):
    pass


class NoteRequestSerializer(serializers.Serializer):
    message = NonBlankField()
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True), required=False)


class StoredSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    stored = serializers.IntegerField()


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class NoteBodySerializer(serializers.Serializer):
    message = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    timestamp = serializers.DateTimeField()


class NoteSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    note = NoteBodySerializer()
    message = serializers.CharField()


EMPTY = {"type": "string", "maxLength": 0}
SCOPE_CHOICES = ["workflow", "session", "actor", "global"]
SCOPE_HEADERS = [
    OpenApiParameter(
        name,
        {"type": "string", "pattern": r"^[^\x00-\x1f]*$"},
        OpenApiParameter.HEADER,
        description=f"the {scope} scope's id (a `{scope}` scope needs it; at most 255 characters)",
    )
    for scope, name in (("workflow", "X-Workflow-ID"), ("session", "X-Session-ID"), ("actor", "X-Actor-ID"))
]


class MemoryKeySerializer(serializers.Serializer):
    key = serializers.CharField(max_length=1024, trim_whitespace=False)
    scope = serializers.ChoiceField(choices=["", *SCOPE_CHOICES], required=False, allow_null=True)


@extend_schema_field({"oneOf": [{"type": kind} for kind in ("object", "array", "string", "number", "boolean")]})
class NotNullJSONField(serializers.JSONField):
    pass


class MemorySetSerializer(MemoryKeySerializer):
    data = NotNullJSONField(help_text="any JSON value except null")


class MemoryEntrySerializer(serializers.Serializer):
    key = serializers.CharField()
    data = serializers.JSONField()
    scope = serializers.ChoiceField(choices=SCOPE_CHOICES)
    scope_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MemoryMissSerializer(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField()
    code = serializers.IntegerField()


class RedeliveredSerializer(serializers.Serializer):
    status = serializers.CharField()
    delivery_id = serializers.UUIDField()


LIST_PARAMETERS = [
    OpenApiParameter("status", {"type": "string", "enum": ["", *Status.values]}),
    OpenApiParameter("target", str, description="`node` or `node.name`"),
    OpenApiParameter("run_id", str),
    OpenApiParameter("node_id", str),
    OpenApiParameter("parent_execution_id", str),
    OpenApiParameter("created_after", {"oneOf": [{"type": "string", "format": "date-time"}, EMPTY]}),
    OpenApiParameter("created_before", {"oneOf": [{"type": "string", "format": "date-time"}, EMPTY]}),
    OpenApiParameter("limit", {"type": "integer", "minimum": 0, "maximum": 500}, description="0 means the default, 50"),
    OpenApiParameter("offset", {"type": "integer", "minimum": 0, "maximum": 100_000}),
]
TARGET = OpenApiParameter(
    "target", str, OpenApiParameter.PATH, pattern=r"^[^.]+\.[^.]+$", description="`node_id.reasoner_or_skill`"
)
SCHEMAS = {
    "ExecuteAsyncView": extend_schema(
        request=ExecuteRequestSerializer,
        parameters=[TARGET],
        responses={202: AcceptedSerializer, 200: AcceptedSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        summary="Queue an execution of `node.reasoner` (202 at once)",
    ),
    "ExecutionDetailView": extend_schema(responses={200: ExecutionSerializer, **NOT_FOUND, **ERRORS}),
    "ExecutionListView": extend_schema(
        operation_id="executions_list", parameters=LIST_PARAMETERS, responses={200: ExecutionPageSerializer, **ERRORS}
    ),
    "BatchStatusView": extend_schema(
        request=BatchStatusRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
        description="An object keyed by execution id: each value is a status body or `{status: not_found}`.",
    ),
    "CallbackView": extend_schema(
        request=CallbackSerializer, responses={200: ExecutionSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS}
    ),
    "CancelView": extend_schema(
        request=None,
        responses={200: CancelledSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        description="Cancels the execution and its active descendants (newest first); the agents holding "
        "them are told by the dispatchers until they answer.",
    ),
    "RunCancelView": extend_schema(
        request=None,
        responses={200: RunCancelledSerializer, **NOT_FOUND, **ERRORS},
        description="Cancels every active execution of the run that the caller may steer.",
    ),
    "RestartView": extend_schema(
        request=RestartRequestSerializer,
        responses={202: AcceptedSerializer, **NOT_FOUND, **ERRORS},
        description="A new execution of the same target, with the same input unless `input` is given, in a new "
        "run unless `same_run`; `restarted_from` names the original.",
    ),
    "ApprovalRequestView": extend_schema(
        request=ApprovalRequestSerializer,
        responses={200: OpenApiTypes.OBJECT, 403: ErrorSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        description="The SDK's `app.pause()`: the execution becomes `waiting` until a decision or expiry. Answers "
        "`{approval_request_id, approval_request_url, status, expires_at}`.",
    ),
    "ApprovalStatusView": extend_schema(
        responses={200: ApprovalSerializer, 403: ErrorSerializer, **NOT_FOUND, **ERRORS}
    ),
    "AwaiterStatusView": extend_schema(
        request=AwaiterSerializer, responses={200: OpenApiTypes.OBJECT, 403: ErrorSerializer, **NOT_FOUND, **ERRORS}
    ),
    "ApprovalResponseView": extend_schema(
        request=DecisionSerializer,
        responses={200: ApprovalSerializer, 403: ErrorSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        description="Decide a pending approval; 409 if it was decided already or the wait ended, saying why.",
    ),
    "ApprovalWebhookView": extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={200: ApprovalSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        auth=[],
        description="An approval tool's decision `{approval_request_id | requestId, decision, feedback?, response?, "
        'execution_id?}`, signed `X-AgentField-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw '
        'body>")>` with AGENTFIELD_APPROVAL_WEBHOOK_SECRET (404 while unset; 401 if the signature is wrong or '
        "older than 5 minutes).",
    ),
    "LogsView": extend_schema(request=LogsSerializer, responses={202: StoredSerializer, **NOT_FOUND, **ERRORS}),
    "StepEventView": extend_schema(request=StepEventSerializer, responses={200: SuccessSerializer, **ERRORS}),
    "MemorySetView": extend_schema(
        request=MemorySetSerializer, parameters=SCOPE_HEADERS, responses={200: MemoryEntrySerializer, **ERRORS}
    ),
    "MemoryGetView": extend_schema(
        request=MemoryKeySerializer,
        parameters=SCOPE_HEADERS,
        responses={200: MemoryEntrySerializer, 404: MemoryMissSerializer, **ERRORS},
    ),
    "MemoryDeleteView": extend_schema(
        request=MemoryKeySerializer, parameters=SCOPE_HEADERS, responses={204: None, **ERRORS}
    ),
    "MemoryListView": extend_schema(
        parameters=[OpenApiParameter("scope", str, enum=SCOPE_CHOICES, required=True), *SCOPE_HEADERS],
        responses={200: MemoryEntrySerializer(many=True), **ERRORS},
    ),
    "RedeliverView": extend_schema(
        request=None,
        responses={202: RedeliveredSerializer, 409: ErrorSerializer, **NOT_FOUND, **ERRORS},
        description="409 while the execution has no delivery yet (it has not finished).",
    ),
    "NoteView": extend_schema(
        request=NoteRequestSerializer,
        responses={200: NoteSerializer, **NOT_FOUND, **ERRORS},
        parameters=[
            OpenApiParameter(
                "X-Execution-ID",
                {"type": "string", "maxLength": 255, "pattern": r"^[^\x00-\x1f]*[^\x00-\x20][^\x00-\x1f]*$"},
                OpenApiParameter.HEADER,
                required=True,
            )
        ],
    ),
}


VIEW_MODULES = dict.fromkeys(
    ("MemorySetView", "MemoryGetView", "MemoryDeleteView", "MemoryListView"), "executions.api.memory_views"
)


def _extension(view_name: str, decorator) -> type[OpenApiViewExtension]:
    def view_replacement(self):
        method = "get" if hasattr(self.target, "get") else "post"

        class Described(self.target):
            pass

        setattr(Described, method, decorator(getattr(self.target, method)))
        return Described

    attributes = {"target_class": VIEW_MODULES.get(view_name, "executions.api.views") + f".{view_name}",
                  "view_replacement": view_replacement}  # fmt: skip
    return type(f"{view_name}Schema", (OpenApiViewExtension,), attributes)


EXTENSIONS = [_extension(name, decorator) for name, decorator in SCHEMAS.items()]


# Fields of one request body that exclude each other (a body with both is a 400).
EXCLUSIVE = {"ExecuteRequestRequest": ("delay_seconds", "run_at")}


def exclusive_fields(result, generator, request, public):
    """drf-spectacular post-processing: say in the schema which fields may not come together."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, fields in EXCLUSIVE.items():
        if name in schemas:
            schemas[name]["not"] = {"required": list(fields)}
    return result
