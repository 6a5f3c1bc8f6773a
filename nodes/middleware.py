"""Guards plain (non-DRF) Django views under the API paths with the same API-key rule as DRF."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework.views import APIView

from nodes.auth import authenticate_request, unauthorized_response

GUARDED_PATHS = ("/api/v1/", "/api/ui/v1/")


class ApiKeyMiddleware(MiddlewareMixin):
    """Applies `authenticate_request` to plain (non-DRF) views under /api/v1 and /api/ui/v1."""

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not request.path.startswith(GUARDED_PATHS):
            return None
        view_class = getattr(view_func, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            return None  # DRF authenticates inside the view (and CSRF-checks sessions)
        return None if authenticate_request(request) else unauthorized_response()
