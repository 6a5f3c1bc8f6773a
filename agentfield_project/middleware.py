"""Request guards that apply to every route before any view runs."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, JsonResponse
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
