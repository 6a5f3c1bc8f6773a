"""Request guards and response headers that apply to every route: NUL in URLs, chunked bodies, CSP."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.decorators import sync_and_async_middleware


def _nul_rejection(request: HttpRequest) -> JsonResponse | None:
    # PostgreSQL text cannot hold NUL: a %00 in a path or query parameter would reach a query
    # and fail there as a 500.
    if "\x00" in request.path or any("\x00" in key or "\x00" in "".join(values) for key, values in request.GET.lists()):
        return JsonResponse(
            {"error": "NUL characters (%00) are not allowed in the URL", "code": "parse_error"}, status=400
        )
    return None


@sync_and_async_middleware
def reject_nul_characters(get_response):
    """Answer 400 to a URL whose path or query holds a NUL character."""
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest):
            return _nul_rejection(request) or await get_response(request)

    else:

        def middleware(request: HttpRequest):
            return _nul_rejection(request) or get_response(request)

    return middleware


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
