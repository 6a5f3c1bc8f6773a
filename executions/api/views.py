"""JSON API of executions: thin views over executions.services and executions.callbacks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from agentfield_project.postgres import availability
from agentfield_project.timestamps import rfc3339
from executions import access, approvals, callback_spool, callbacks, services, statuses, steering
from executions.api.serializers import accepted_body, status_bodies
from executions.exceptions import ExecutionError
from executions.models import Execution, Status
from nodes import policy
from nodes import services as node_services
from nodes.auth import principal_of
from webhooks import services as webhooks

logger = logging.getLogger(__name__)

MAX_LIMIT = 500
MAX_OFFSET = 100_000


def accepted_response(execution: Execution, webhook_error: str | None, created: bool) -> Response:
    response = Response(accepted_body(execution, webhook_error), status=202 if created else 200)
    response["X-Execution-ID"] = execution.id
    response["X-Run-ID"] = execution.run_id
    response["Location"] = f"/api/v1/executions/{execution.id}"
    return response


class ExecuteAsyncView(APIView):
    """POST /api/v1/execute/async/{node}.{name}: queue it and answer 202 at once."""

    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py), in batches

    throttle_scope = "execute"

    def post(self, request, target: str):
        submission = services.build_submission(target, request.data, request.headers)
        execution, webhook_error, created = services.submit(submission, timezone.now(), principal_of(request))
        return accepted_response(execution, webhook_error, created)

    @staticmethod
    def post_batch(calls: list[tuple[Any, dict[str, str]]]) -> list[Response | Exception]:
        """`post` for many requests at once: one transaction for all (services.submit_many, runtime/batching.py)."""
        answers: list[Response | Exception | None] = [None] * len(calls)
        items = []
        for index, (request, kwargs) in enumerate(calls):
            try:
                submission = services.build_submission(kwargs["target"], request.data, request.headers)
            except Exception as error:  # noqa: BLE001 - this request's own 4xx (or 500), not the batch's
                answers[index] = error
                continue
            items.append((index, (submission, principal_of(request))))
        outcomes = services.submit_many([item for _, item in items], timezone.now())
        for (index, _), outcome in zip(items, outcomes, strict=True):
            answers[index] = outcome if isinstance(outcome, Exception) else accepted_response(*outcome)
        return answers  # type: ignore[return-value] - every slot is filled above


class ExecutionDetailView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py)

    def get(self, request, execution_id: str):
        execution = services.get_execution(execution_id)
        access.check(principal_of(request), execution, policy.may_read)
        return Response(status_bodies([execution])[execution.id])

    async def get_on_loop(self, request, execution_id: str) -> Response | None:
        """`get` on the event loop, without a request thread (runtime/direct.py); None: the thread path answers.

        What needs another query (an execution with a webhook, owners not cached) raises Django's
        SynchronousOnlyOperation here, and goes to the thread path too.
        """
        execution = await services.get_execution_on_loop(execution_id)
        if execution is None:
            return None
        access.check(principal_of(request), execution, policy.may_read)
        return Response(status_bodies([execution])[execution.id])


def _int_param(request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > maximum:
        raise ValidationError({name: f"must be an integer from 0 to {maximum}"})
    return int(raw)


def _time_param(request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        moment = parse_datetime(raw)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 that Python parses.
        moment = moment and (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise ValidationError({name: "must be an RFC 3339 timestamp"})
    return moment


class ExecutionListView(APIView):
    """GET /api/v1/executions: newest first, filtered by status, target, run, node and creation time."""

    throttle_scope = "query"

    def get(self, request):
        limit = _int_param(request, "limit", 50, MAX_LIMIT) or 50
        offset = _int_param(request, "offset", 0, MAX_OFFSET)
        executions = access.visible(principal_of(request), Execution.objects.all())
        if state := request.query_params.get("status"):
            if state not in Status.values:
                raise ValidationError({"status": f"must be one of {', '.join(Status.values)}"})
            executions = executions.filter(status=state)
        if target := request.query_params.get("target"):
            node_id, _, name = target.partition(".")
            executions = executions.filter(node_id=node_id, **({"target_name": name} if name else {}))
        for param, field in (
            ("run_id", "run_id"),
            ("node_id", "node_id"),
            ("parent_execution_id", "parent_execution_id"),
        ):
            if value := request.query_params.get(param):
                executions = executions.filter(**{field: value})
        if after := _time_param(request, "created_after"):
            executions = executions.filter(created_at__gte=after)
        if before := _time_param(request, "created_before"):
            executions = executions.filter(created_at__lt=before)
        page = list(executions.order_by("-created_at", "-id")[offset : offset + limit + 1])
        has_more = len(page) > limit
        bodies = status_bodies(page[:limit])
        return Response(
            {
                "executions": list(bodies.values()),
                "count": len(bodies),
                "limit": limit,
                "offset": offset,
                "next_offset": offset + limit if has_more else None,
            }
        )


class BatchStatusView(APIView):
    """POST /api/v1/executions/batch-status: up to 1,000 ids in one round trip."""

    throttle_scope = "query"

    def post(self, request):
        ids = request.data.get("execution_ids") if isinstance(request.data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(item, str) and len(item) <= 255 for item in ids):
            raise ExecutionError("execution_ids must be a list of execution id strings")
        limit = settings.AGENTFIELD_BATCH_STATUS_LIMIT
        if len(ids) > limit:
            raise ExecutionError(f"at most {limit} execution_ids per request (got {len(ids)})")
        # Executions this key may not read are "not_found", like ids that do not exist.
        found = status_bodies(list(access.visible(principal_of(request), Execution.objects.filter(pk__in=set(ids)))))
        missing = {"status": "not_found"}
        return Response({item: found.get(item) or {"execution_id": item, **missing} for item in ids})


class CallbackView(APIView):
    """POST /api/v1/executions/{id}/status: the agent's completion or progress report."""

    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py)

    def post(self, request, execution_id: str):
        callback = callbacks.parse_callback(request.data)
        principal = principal_of(request)
        try:
            execution = callbacks.apply_callback(execution_id, callback, timezone.now(), principal)
        except Exception as error:
            # The SDK stops retrying after ~15 s: keep a terminal status for when the database is back
            # (who sent it is kept too: it is checked when the callback is applied).
            if callback.status in statuses.TERMINAL and availability.is_unavailable(error):
                callback_spool.keep(execution_id, request.data, timezone.now(), principal)
            raise
        # The report is the instance's sign of life too, when its heartbeats stall (nodes/services.py).
        node_services.record_sign_of_life(execution.node_id, execution.node_instance_id, timezone.now())
        return Response(status_bodies([execution])[execution.id])


def _author(request, principal: policy.Principal) -> str:
    """Who a cancel or decision is recorded as: the key's name, or the staff user's."""
    return steering.who(principal, getattr(request.user, "username", "") or "")


class CancelView(APIView):
    """POST /api/v1/executions/{id}/cancel: it and its active descendants; agents are told durably."""

    def post(self, request, execution_id: str):
        principal = principal_of(request)
        by = _author(request, principal)
        execution, cancelled = steering.cancel(execution_id, timezone.now(), principal, by)
        return Response({**status_bodies([execution])[execution.id], "cancelled": cancelled})


class RunCancelView(APIView):
    """POST /api/v1/runs/{run_id}/cancel: every active execution of the run the caller may steer."""

    def post(self, request, run_id: str):
        principal = principal_of(request)
        by = _author(request, principal)
        cancelled = steering.cancel_run(run_id, timezone.now(), principal, by)
        return Response({"run_id": run_id, "cancelled": cancelled, "count": len(cancelled)})


class RestartView(APIView):
    """POST /api/v1/executions/{id}/restart: a new execution of the same target (202, like execute)."""

    throttle_scope = "execute"

    def post(self, request, execution_id: str):
        body = request.data if request.data is not None else {}
        execution = steering.restart(execution_id, body, timezone.now(), principal_of(request))
        return accepted_response(execution, None, True)


class LogsView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py), in batches

    def post(self, request, execution_id: str):
        stored = callbacks.store_logs(execution_id, request.data, timezone.now(), principal_of(request))
        return logs_stored(stored)

    @staticmethod
    def post_batch(calls: list[tuple[Any, dict[str, str]]]) -> list[Response | Exception]:
        """`post` for many requests at once: every accepted line in one INSERT (runtime/batching.py)."""
        posts = [
            callbacks.LogPost(kwargs["execution_id"], request.data, principal_of(request)) for request, kwargs in calls
        ]
        results = callbacks.store_log_posts(posts, timezone.now())
        return [result if isinstance(result, Exception) else logs_stored(result) for result in results]


def logs_stored(stored: int) -> Response:
    return Response({"success": True, "stored": stored}, status=status.HTTP_202_ACCEPTED)


class StepEventView(APIView):
    served_directly = True  # the SDK's hot path (agentfield_project/runtime/direct.py), in batches

    def post(self, request):
        callbacks.store_step_event(request.data, timezone.now(), principal_of(request))
        return Response({"success": True})

    @staticmethod
    def post_batch(calls: list[tuple[Any, dict[str, str]]]) -> list[Response | Exception]:
        """`post` for many requests at once: every accepted event in one INSERT (runtime/batching.py)."""
        posts = [(request.data, principal_of(request)) for request, _ in calls]
        refusals = callbacks.store_step_events(posts, timezone.now())
        return [refused or Response({"success": True}) for refused in refusals]


class NoteView(APIView):
    def post(self, request):
        execution_id = services.header(request.headers, "X-Execution-ID") or request.query_params.get(
            "execution_id", ""
        )
        note = callbacks.store_note(execution_id, request.data, timezone.now(), principal_of(request))
        body = {"message": note.message, "tags": note.data.get("tags", []), "timestamp": rfc3339(note.created_at)}
        return Response({"success": True, "note": body, "message": "Note added successfully"})


class RedeliverView(APIView):
    """POST: send the execution's webhook again as a new attempt series with the same webhook-id."""

    def post(self, request, execution_id: str):
        principal = principal_of(request)
        if not principal.is_admin:  # an admin may redeliver any delivery, whatever became of its execution
            access.check(principal, services.get_execution(execution_id), policy.may_steer)
        delivery = webhooks.redeliver(execution_id, timezone.now())
        return Response({"status": "queued", "delivery_id": str(delivery.id)}, status=status.HTTP_202_ACCEPTED)


class ApprovalRequestView(APIView):
    """POST /api/v1/agents/{node}/executions/{id}/request-approval: the SDK's `app.pause()`."""

    def post(self, request, node_id: str, execution_id: str):
        body = approvals.request(execution_id, node_id, request.data, principal_of(request), timezone.now())
        return Response(body)


class ApprovalStatusView(APIView):
    """GET /api/v1/agents/{node}/executions/{id}/approval-status: the SDK's fallback poll."""

    def get(self, request, node_id: str, execution_id: str):
        return Response(approvals.status(execution_id, node_id, principal_of(request)))


class AwaiterStatusView(APIView):
    """POST /api/v1/agents/{node}/executions/{id}/awaiter-status: a parent waits on a paused child."""

    def post(self, request, node_id: str, execution_id: str):
        return Response(approvals.awaiter(execution_id, node_id, request.data, principal_of(request), timezone.now()))


class ApprovalResponseView(APIView):
    """POST /api/v1/executions/{id}/approval-response: a decision from whoever may steer the execution."""

    def post(self, request, execution_id: str):
        principal = principal_of(request)
        access.check(principal, services.get_execution(execution_id), policy.may_steer)
        data = request.data if isinstance(request.data, dict) else {}
        by = _author(request, principal)
        decided = approvals.decide(
            execution_id, data.get("decision"), data.get("feedback"), data.get("response"), by, timezone.now(),
            data.get("approval_request_id") if isinstance(data.get("approval_request_id"), str) else None,
        )  # fmt: skip
        return Response(approvals.body_of(decided))


class ApprovalWebhookView(APIView):
    """POST /api/v1/webhooks/approval-response: an approval tool's decision, HMAC-signed (no API key)."""

    authentication_classes: list = []
    permission_classes: list = []

    def post(self, request):
        raw = request.body  # the signed bytes, read before DRF parses them
        header = request.headers.get(approvals.SIGNATURE_HEADER, "")
        decided = approvals.decide_from_webhook(raw, header, request.data, timezone.now())
        return Response(approvals.body_of(decided))
