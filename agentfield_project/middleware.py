"""Request guards and response headers that apply to every route: NUL in URLs, chunked bodies, CSP."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.deprecation import MiddlewareMixin


class RejectNulCharactersMiddleware(MiddlewareMixin):
    """Answer 400 to a URL whose path or query holds a NUL character."""

    def process_request(self, request: HttpRequest) -> JsonResponse | None:
        # PostgreSQL text cannot hold NUL: a %00 in a path or query parameter would reach a query
        # and fail there as a 500.
        query = request.GET.lists()
        if "\x00" in request.path or any("\x00" in key or "\x00" in "".join(values) for key, values in query):
            return JsonResponse(
                {"error": "NUL characters (%00) are not allowed in the URL", "code": "parse_error"}, status=400
            )
        return None


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Adds AGENTFIELD_CONTENT_SECURITY_POLICY unless the view set its own policy."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        policy = settings.AGENTFIELD_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class ChunkedBodyMiddleware(MiddlewareMixin):
    """Gives a chunked request body its Content-Length, so DRF parses it instead of seeing `{}`.

    The server has already buffered the body; reading it applies DATA_UPLOAD_MAX_MEMORY_SIZE,
    and an oversized chunked body gets the same JSON 413 as an oversized declared one.
    """

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if not self._length_unknown(request):
            return None
        try:
            request.META["CONTENT_LENGTH"] = str(len(request.body))
        except RequestDataTooBig:
            return JsonResponse({"error": "request body too large", "code": "payload_too_large"}, status=413)
        return None

    @staticmethod
    def _length_unknown(request: HttpRequest) -> bool:
        return "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH")
