"""Guards plain (non-DRF) Django views under the API paths with the same API-key rule as DRF."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework.views import APIView

from nodes.auth import authenticate_request, unauthorized_response

GUARDED_PATHS = ("/api/v1/", "/api/ui/v1/")


def guards(request: HttpRequest, view_func: Callable) -> bool:
    """Whether this middleware checks the request (a plain view under the API paths)."""
    if not request.path.startswith(GUARDED_PATHS):
        return False
    view_class = getattr(view_func, "cls", None)
    # DRF views authenticate inside the view (and CSRF-check sessions).
    return not (isinstance(view_class, type) and issubclass(view_class, APIView))


class ApiKeyMiddleware(MiddlewareMixin):
    """Applies `authenticate_request` to plain (non-DRF) views under /api/v1 and /api/ui/v1."""

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not guards(request, view_func):
            return None
        principal = authenticate_request(request)
        if principal is None:
            return unauthorized_response()
        request.principal = principal  # what the view may let it do is nodes/policy.py's
        return None
