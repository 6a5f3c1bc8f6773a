"""Who may watch every execution: the one place the event stream and the dashboard ask.

The stream: a valid API key (`X-API-Key` / `Authorization: Bearer`, see nodes/auth.py) or a
logged-in staff user (Django's session). The dashboard: staff only.
"""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, JsonResponse

from nodes import auth


def may_watch_all(user) -> bool:
    """Staff users may see every execution, its input, result and trace."""
    return bool(user and user.is_active and user.is_staff)


async def stream_denial(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read the stream of all executions, else the JSON 401/403 to send."""
    if await sync_to_async(auth.has_valid_key)(request):
        return None
    user = await request.auser()
    if not user.is_authenticated:
        return auth.unauthorized_response()  # the same refusal as every API route
    if not may_watch_all(user):
        return JsonResponse({"error": "staff access required", "code": "permission_denied"}, status=403)
    return None


def dashboard_view(view: Callable) -> Callable:
    """Decorate an HTML view: staff only; anyone else is sent to the admin login page."""
    return staff_member_required(view)
