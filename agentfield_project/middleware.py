"""Request/response hardening Django 5.2 lacks: a Content-Security-Policy header, chunked JSON bodies."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse


class ContentSecurityPolicyMiddleware:
    """Adds AGENTFIELD_CONTENT_SECURITY_POLICY unless the view set its own policy."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._add_header(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        return self._add_header(await self.get_response(request))

    @staticmethod
    def _add_header(response: HttpResponseBase) -> HttpResponseBase:
        policy = settings.AGENTFIELD_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class _Middleware:
    """A middleware usable from sync and async chains; subclasses implement `process(request)`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self.process(request) or self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        return self.process(request) or await self.get_response(request)

    def process(self, request: HttpRequest) -> HttpResponseBase | None:
        raise NotImplementedError


class ChunkedBodyMiddleware(_Middleware):
    """Gives a chunked request body its Content-Length, so DRF parses it instead of seeing `{}`.

    The server has already buffered the body; reading it applies DATA_UPLOAD_MAX_MEMORY_SIZE,
    and an oversized chunked body gets the same JSON 413 as an oversized declared one.
    """

    def process(self, request: HttpRequest) -> HttpResponseBase | None:
        if "HTTP_TRANSFER_ENCODING" not in request.META or request.META.get("CONTENT_LENGTH"):
            return None
        try:
            request.META["CONTENT_LENGTH"] = str(len(request.body))
        except RequestDataTooBig:
            return JsonResponse({"error": "request body too large", "code": "payload_too_large"}, status=413)
        return None


class NulCharacterMiddleware(_Middleware):
    """Refuses a NUL character in the path or query string with a JSON 400 (PostgreSQL cannot store it)."""

    def process(self, request: HttpRequest) -> HttpResponseBase | None:
        values = [request.path_info, *(v for _, vs in request.GET.lists() for v in vs), *request.GET.keys()]
        if any("\x00" in value for value in values):
            message = "NUL characters (%00) are not allowed in the URL"
            return JsonResponse({"error": message, "code": "parse_error"}, status=400)
        return None
