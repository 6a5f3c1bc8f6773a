"""The SDK's hot routes: their DRF view method called directly, without the request machinery around it.

An SDK agent fanning out a thousand `app.call`s sends the server about fourteen thousand small
requests (submits, status polls and callbacks, log lines, step events, heartbeats, memory). Most
of their CPU went to the layers around the view, not to the view: Django's WSGI request, eleven
middlewares, URL resolving, DRF's Request wrapper, content negotiation and renderer selection
(bench scenario 11). A view class that sets `served_directly = True` is instead called here with
a `DirectRequest` (what its methods read: `data`, `headers`, `auth`, `user`, `method`), after the
same steps DRF's `APIView.initial` takes (the view's authenticators, permissions and throttles);
its exceptions go through the view's own `handle_exception` (so the one exception handler of
agentfield_project/exceptions.py), and its Response is rendered by DRF's JSONRenderer. So the
view method stays the one implementation of the route, and its DRF path still serves the same
URL for anything `accepts()` turns away: a request with a cookie (a staff session, CSRF-checked
by DRF), a query string, a body that is not declared JSON, a Host that ALLOWED_HOSTS refuses or a
path with NUL (the middlewares' 400s).

What the skipped middlewares did for these requests is done here: the response headers of
SecurityMiddleware (HSTS behind https included), XFrameOptionsMiddleware and
ContentSecurityPolicyMiddleware are added, the
request's database connections are handed back by the `request_started`/`request_finished`
signals as Django's handler sends them, and a 4xx/5xx is logged on `django.request` as Django
logs it. A view may also answer on the event loop (`respond_on_loop`): only its plain success,
everything else it hands to `respond`. The tests (tests/agentfield_project/test_direct.py) send each direct route the same
requests through both paths and compare the answers.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponseBase, QueryDict
from django.http.request import HttpHeaders
from django.utils.functional import cached_property
from django.utils.log import log_response
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response as DrfResponse

from agentfield_project import parsers
from agentfield_project.exceptions import DomainError

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
logger = logging.getLogger("django.request")
loop_logger = logging.getLogger(__name__)
_renderer = JSONRenderer()
_EMPTY_QUERY = QueryDict()


def serves(view_class: type | None, method: str) -> bool:
    """Whether requests of `method` (the SDK's GET or POST) for `view_class` may take the direct path."""
    return (
        method in ("GET", "POST")
        and bool(getattr(view_class, "served_directly", False))
        and (hasattr(view_class, method.lower()))
    )


def on_loop(view_class: type | None, method: str) -> bool:
    """Whether `view_class` may answer `method` on the event loop first (its `<method>_on_loop`)."""
    return serves(view_class, method) and hasattr(view_class, f"{method.lower()}_on_loop")


def batches(view_class: type | None, method: str) -> bool:
    """Whether POSTs to `view_class` are answered in batches (`respond_batch`, its `post_batch`)."""
    return method == "POST" and serves(view_class, method) and hasattr(view_class, "post_batch")


def accepts(environ: dict[str, Any], body: bytes) -> bool:
    """Whether this request is plain enough for the direct path: no cookie, no query, no body or a JSON
    one, a path without NUL and a Host Django allows (the whole path answers the others as it always has)."""
    if environ["QUERY_STRING"] or "\x00" in environ["PATH_INFO"] or "HTTP_COOKIE" in environ:
        return False
    # What DRF's JSONParser takes; any other body is DRF's to refuse (415), or to ignore without a type.
    if body and environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower() != "application/json":
        return False
    host = tuple((name, environ[name]) for name in _HOST_KEYS if name in environ)
    settings_read = (tuple(settings.ALLOWED_HOSTS), settings.USE_X_FORWARDED_HOST, settings.DEBUG)
    return _host_allowed(host, settings_read)


# What `HttpRequest.get_host` reads of a request (the scheme only changes the port, which is not judged).
_HOST_KEYS = ("HTTP_HOST", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "SERVER_NAME", "SERVER_PORT")


# An agent sends the same Host on every request; judging it cost 5% of a heartbeat's server CPU
# (bench scenario 11). The key is what get_host reads: those values and the settings it applies.
@functools.lru_cache(maxsize=256)
def _host_allowed(host: tuple[tuple[str, str], ...], settings_read: tuple[Any, ...]) -> bool:
    probe = HttpRequest()
    probe.META = dict(host)
    try:
        probe.get_host()  # ALLOWED_HOSTS, as CommonMiddleware applies it on the whole path
    except DisallowedHost:
        return False
    return True


class DirectRequest:
    """What a DRF view method reads of its request, from the WSGI environ and the body."""

    user = None  # no session: only an API key (or the open API) authenticates here

    def __init__(self, environ: dict[str, Any], body: bytes) -> None:
        self.META = environ
        self.method = environ["REQUEST_METHOD"]
        self.path = environ["PATH_INFO"]
        self.body = body
        self.auth: Any = None
        self.query_params = _EMPTY_QUERY
        self._request = self  # DRF's SessionAuthentication reads `request._request.user`

    @cached_property
    def headers(self) -> HttpHeaders:
        return HttpHeaders(self.META)

    @cached_property
    def data(self) -> Any:
        return parsers.parse_body(self.body)


def respond(view_class: type, kwargs: dict[str, Any], environ: dict[str, Any], body: bytes) -> Response:
    """Run one request through `view_class`'s method; the finished response."""
    signals.request_started.send(sender=DirectRequest, environ=environ)
    try:
        view, request = prepare(view_class, kwargs, environ, body)
        try:
            _initial(view, request)
            response = getattr(view, request.method.lower())(request, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the view's own handler decides, as under DRF
            response = handled(view, exc)
        return finish(request, response)
    finally:
        signals.request_finished.send(sender=DirectRequest)


async def respond_on_loop(
    view_class: type, kwargs: dict[str, Any], environ: dict[str, Any], body: bytes
) -> Response | None:
    """The answer of the view's `<method>_on_loop`, run on the event loop; None sends the request to
    the thread path (`respond`), which answers it whole: any refusal or error, and anything that
    needs a query the loop must not make (Django raises SynchronousOnlyOperation for it, before any
    I/O: a key set or an owner not cached, a key's last use to record). A throttle's token spent
    here is spent again there: only for those requests, a few a minute per key.
    """
    view, request = prepare(view_class, kwargs, environ, body)
    try:
        _initial(view, request)
        response = await getattr(view, f"{request.method.lower()}_on_loop")(request, **kwargs)
    except (exceptions.APIException, DomainError, SynchronousOnlyOperation):
        return None  # a refusal, or a fact only a query can tell: the thread path answers it
    except Exception:  # noqa: BLE001 - a bug of the loop path: the request is still answered, and it is seen
        loop_logger.warning(
            "%s: answered in a request thread after an error on the event loop", request.path, exc_info=True
        )
        return None
    return None if response is None else finish(request, response)


def respond_batch(view_class: type, requests: list[tuple[dict[str, Any], dict[str, Any], bytes]]) -> list[Response]:
    """Run requests for one view with `post_batch` together: `post_batch` gets those that pass
    the checks (authenticated, permitted, not throttled, a body that parses) in one call."""
    signals.request_started.send(sender=DirectRequest, environ=requests[0][1])
    try:
        prepared = [prepare(view_class, kwargs, environ, body) for kwargs, environ, body in requests]
        answers: list[HttpResponseBase | None] = [None] * len(prepared)
        admitted = []
        for index, (view, request) in enumerate(prepared):
            try:
                _initial(view, request)
                request.data  # noqa: B018 - a body that does not parse is this request's 400, not the batch's
                admitted.append(index)
            except Exception as exc:  # noqa: BLE001
                answers[index] = handled(view, exc)
        try:
            results = view_class.post_batch([(prepared[index][1], prepared[index][0].kwargs) for index in admitted])
        except Exception as exc:  # noqa: BLE001 - e.g. the database is away: each request answers it
            results = [exc] * len(admitted)
        for index, result in zip(admitted, results, strict=True):
            view = prepared[index][0]
            answers[index] = handled(view, result) if isinstance(result, Exception) else result
        return [finish(request, answer) for (_, request), answer in zip(prepared, answers, strict=True)]
    finally:
        signals.request_finished.send(sender=DirectRequest)


def prepare(
    view_class: type, kwargs: dict[str, Any], environ: dict[str, Any], body: bytes
) -> tuple[Any, DirectRequest]:
    """A view instance set up as `APIView.as_view` would set it up, and its request."""
    request = DirectRequest(environ, body)
    view = view_class()
    view.args, view.kwargs, view.request, view.format_kwarg, view.headers = (), kwargs, request, None, {}
    return view, request


def handled(view: Any, exc: Exception) -> HttpResponseBase:
    """The view's answer to `exc` (its exception handler); an uncaught one is a logged JSON 500."""
    try:
        return view.handle_exception(exc)
    except Exception:  # noqa: BLE001 - uncaught: Django's handler500 would answer this JSON 500
        logger.exception("Internal Server Error: %s", view.request.path, exc_info=exc)
        response = DrfResponse({"error": "internal server error", "code": "server_error"}, status=500)
        response._has_been_logged = True
        return response


def finish(request: DirectRequest, response: HttpResponseBase) -> Response:
    """Log a 4xx/5xx as Django does and encode the response for the event loop to send."""
    if response.status_code >= 400:
        log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
    return _encode(response, _is_secure(request.META))


def _initial(view: Any, request: DirectRequest) -> None:
    """What `APIView.initial` checks before the handler: authentication, permissions, throttles."""
    for authenticator in view.get_authenticators():
        result = authenticator.authenticate(request)
        if result is not None:
            request.user, request.auth = result
            break
    for permission in view.get_permissions():
        if not permission.has_permission(request, view):
            raise exceptions.PermissionDenied(getattr(permission, "message", None))
    for throttle in view.get_throttles():
        if not throttle.allow_request(request, view):
            raise exceptions.Throttled(throttle.wait())


def _encode(response: HttpResponseBase, secure: bool) -> Response:
    if isinstance(response, DrfResponse):
        content = b"" if response.data is None else _renderer.render(response.data)
        response["Content-Type"] = "application/json"
    else:
        content = response.content
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    headers += [(b"content-length", str(len(content)).encode()), *_security_headers(secure)]
    return response.status_code, headers, content


def _is_secure(environ: dict[str, Any]) -> bool:
    """`HttpRequest.is_secure`: https, as daphne saw it or as a trusted proxy's header says."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        if header in environ:
            return environ[header].split(",", 1)[0].strip() == secure_value
    return environ.get("wsgi.url_scheme") == "https"


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers the skipped middlewares would have added to an API response (settings at call time)."""
    headers = [(b"x-frame-options", settings.X_FRAME_OPTIONS.encode())]
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        hsts += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
        hsts += "; preload" if settings.SECURE_HSTS_PRELOAD else ""
        headers.append((b"strict-transport-security", hsts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        headers.append((b"referrer-policy", str(settings.SECURE_REFERRER_POLICY).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    if settings.AGENTFIELD_CONTENT_SECURITY_POLICY:
        headers.append((b"content-security-policy", settings.AGENTFIELD_CONTENT_SECURITY_POLICY.encode()))
    return headers
