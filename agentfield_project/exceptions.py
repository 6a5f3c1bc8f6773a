"""The one place where errors become HTTP responses: every error is JSON `{"error": ...}`."""

from __future__ import annotations

import sys

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from agentfield_project.postgres import availability


class DomainError(Exception):
    """Request error."""

    # Each app has one base of this (ExecutionError, NodeError, WebhookError) whose subclasses
    # name their status and code; the docstring is the default message.
    http_status = 400
    code = "error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "payload_too_large"


def _message(detail) -> str:
    if isinstance(detail, list):
        return "; ".join(_message(item) for item in detail)
    if isinstance(detail, dict):
        return "; ".join(
            _message(value) if key == "non_field_errors" else f"{key}: {_message(value)}"
            for key, value in detail.items()
        )
    return str(detail)


def exception_handler(exc, context):
    """Map DRF, Django and domain errors to `{"error": message, "code": ...}` with a fitting 4xx.

    A database that cannot be reached is a 503 (see agentfield_project/postgres/availability.py).
    """
    if availability.is_unavailable(exc):
        return availability.unavailable_response(exc)
    if isinstance(exc, DomainError):
        return Response({"error": str(exc), "code": exc.code}, status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "not found")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body = {"error": _message(exc.detail), "code": exc.default_code}
    if isinstance(exc.detail, dict):
        body["fields"] = exc.get_full_details()
    response.data = body
    return response


def error_response(exc: Exception) -> JsonResponse:
    """The same JSON error for views outside DRF (async views); re-raises anything unexpected."""
    if availability.is_unavailable(exc):
        return availability.unavailable_response(exc)
    if isinstance(exc, DomainError):
        return JsonResponse({"error": str(exc), "code": exc.code}, status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if isinstance(exc, exceptions.APIException):
        return JsonResponse({"error": _message(exc.detail), "code": exc.default_code}, status=exc.status_code)
    raise exc


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A SuspiciousOperation outside DRF (e.g. an oversized body): JSON 400, or 413 for size."""
    if not request.path.startswith("/api/"):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"error": PayloadTooLarge.default_detail, "code": PayloadTooLarge.default_code}, status=413)
    return JsonResponse({"error": "bad request", "code": "bad_request"}, status=400)


def page_not_found(request, exception):
    """handler404: JSON under /api/ (every API error is JSON), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": f"no route for {request.method} {request.path}", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: JSON under /api/, Django's page elsewhere; a 503 on every route while the database is away.

    Django calls it inside its `except` block, so the exception (raised by a middleware or a view
    outside DRF) is still at hand.
    """
    error = sys.exc_info()[1]
    if availability.is_unavailable(error):
        return availability.unavailable_response(error)
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "internal server error", "code": "server_error"}, status=500)
    return defaults.server_error(request)
