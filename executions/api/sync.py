"""POST /api/v1/execute/{node}.{name}: the synchronous route, through the same durable queue.

An async view: once the execution is queued it gives its thread and database connection back
and waits on the event hub (executions/waiting.py), so however many clients wait, the server
keeps serving the agents' callbacks, memory calls and nested app.call traffic.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from agentfield_project.exceptions import error_response
from agentfield_project.parsers import loads
from agentfield_project.runtime.handler import release_request_thread
from agentfield_project.timestamps import rfc3339
from executions import services, waiting
from executions.api.serializers import accepted_body, status_bodies
from executions.models import TERMINAL, Execution
from nodes import policy, throttling
from nodes.policy import Principal


def _submit(target: str, raw: bytes, headers, principal: Principal) -> tuple[Execution, str | None, bool]:
    submission = services.build_submission(target, loads(raw), headers)
    return services.submit(submission, timezone.now(), principal)


def _terminal(execution_id: str) -> dict | None:
    execution = Execution.objects.filter(pk=execution_id, status__in=TERMINAL).first()
    if execution is None:
        return None
    body = status_bodies([execution])[execution.id]
    body["finished_at"] = rfc3339(execution.completed_at)
    return body


@csrf_exempt
async def execute_sync(request: HttpRequest, target: str) -> JsonResponse:
    """Queue the execution, wait for its terminal status (200), or answer 202 after the wait."""
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed; use POST", "code": "method_not_allowed"}, status=405)
    try:
        # The principal is set by nodes.middleware.ApiKeyMiddleware, which guards this plain view.
        principal = getattr(request, "principal", policy.OPEN)
        if refusal := throttling.refusal(principal, "execute"):
            return refusal
        raw = request.body
        execution, webhook_error, _ = await sync_to_async(_submit)(target, raw, request.headers, principal)
        await release_request_thread()
        body = await waiting.wait_until(
            execution.id,
            _terminal,
            settings.AGENTFIELD_SYNC_WAIT_SECONDS,
            wake_on=lambda event: event.type in waiting.TERMINAL_TYPES,
        )
    except Exception as exc:  # noqa: BLE001 - error_response maps client errors and re-raises the rest
        return error_response(exc)
    if body is not None:
        return _with_ids(JsonResponse(body, status=200), execution)
    return _with_ids(JsonResponse(accepted_body(execution, webhook_error), status=202), execution)


def _with_ids(response: JsonResponse, execution: Execution) -> JsonResponse:
    response["X-Execution-ID"] = execution.id
    response["X-Run-ID"] = execution.run_id
    return response
