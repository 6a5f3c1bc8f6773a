"""Django's built-in middleware with its hooks run on the event loop when they cannot block.

Under ASGI, Django runs every hook of a `MiddlewareMixin` middleware through
`sync_to_async`: a hand-off to the request's thread and back. With a dozen middleware that is
about twenty hand-offs per request, which cost more CPU than the view itself. Most hooks only
read headers and set attributes, so `InlineHooks` calls them directly on the event loop and
hands off only when a hook may reach the database or the disk (`*_needs_thread` says when).
Should a hook touch the database anyway, Django raises SynchronousOnlyOperation: a loud 500
in the tests, never a silently blocked loop. Under a sync handler (the test client) nothing
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase
from django.middleware import clickjacking, common, csrf, security
from django.utils.deprecation import MiddlewareMixin

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class InlineHooks(MiddlewareMixin):
    """MiddlewareMixin whose async mode calls non-blocking hooks without a thread hand-off."""

    def request_needs_thread(self, request: HttpRequest) -> bool:
        """Whether process_request may block (database, disk) for this request."""
        return False

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        """Whether process_response may block for this request and response."""
        return False

    def view_needs_thread(self, request: HttpRequest, view: Callable) -> bool:
        """Whether process_view may block for this request and view."""
        return False

    def __init__(self, get_response: Callable) -> None:
        super().__init__(get_response)
        if self.async_mode and hasattr(self, "process_view"):
            # Django adapts process_view on its own (outside __acall__); an async one is awaited
            # as is, so the thread hand-off becomes this method's choice.
            self._sync_process_view = self.process_view
            self.process_view = self._process_view_async

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            if self.request_needs_thread(request):
                response = await sync_to_async(self.process_request, thread_sensitive=True)(request)
            else:
                response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response

    async def _process_view_async(
        self, request: HttpRequest, view: Callable, args: tuple, kwargs: dict[str, Any]
    ) -> HttpResponseBase | None:
        if self.view_needs_thread(request, view):
            return await sync_to_async(self._sync_process_view, thread_sensitive=True)(request, view, args, kwargs)
        return self._sync_process_view(request, view, args, kwargs)


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    """Redirects and security headers: header work only."""


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    """User-agent ban, slash redirect (a URL resolve) and Content-Length: no I/O."""


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    """One response header."""


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """Sets a lazy `request.user`; the session and user are read later, in the view's thread."""


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """The session store is lazy; only saving a modified session writes to the database."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Storing messages reads and writes the session, so only then in the thread."""

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """Cookie-based CSRF is header work; a session-based secret or a form body is read in the thread."""

    def request_needs_thread(self, request: HttpRequest) -> bool:
        return settings.CSRF_USE_SESSIONS

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return settings.CSRF_USE_SESSIONS

    def view_needs_thread(self, request: HttpRequest, view: Callable) -> bool:
        # The check of an unsafe, non-exempt request may parse a form body (spooled to disk when
        # large) and render the failure page.
        exempt = getattr(view, "csrf_exempt", False) or request.method in SAFE_METHODS
        return settings.CSRF_USE_SESSIONS or not exempt
