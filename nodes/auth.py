"""API-key authentication for /api/v1 and /api/ui/v1, for DRF views and plain Django views.

Keys are required as soon as one active key exists; until then the API is open (the `serve`
command refuses a non-loopback address in that state). A key travels in `X-API-Key` (what the
SDK sends when AGENTFIELD_API_KEY is set) or `Authorization: Bearer <key>`, never in the query
string. A logged-in staff user (the dashboard) is accepted too. Every refusal has the same body,
so a client cannot tell a missing key from a wrong or revoked one.

DRF views are guarded by `ApiKeyAuthentication` + `HasApiKey` (REST_FRAMEWORK defaults; a staff
session there is CSRF-checked). Plain Django views under /api/ (the sync execute route, the SSE
stream) are guarded by `nodes.middleware.ApiKeyMiddleware`, which calls `authenticate_request(request)`; a view
may also call it (or `await aauthenticate_request(request)`) itself and answer
`unauthorized_response()` when it is False. Plain views are csrf_exempt, so there a staff session
counts only for safe methods (GET/HEAD/OPTIONS).

Authentication answers *who* (a `policy.Principal`: the key's id, role and reserved nodes; a
staff session and the open API are admins); what that principal may do is nodes/policy.py's.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from agentfield_project.postgres import availability
from nodes import policy
from nodes.models import ApiKey

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
KEY_PREFIX = "afk_"
PREFIX_LENGTH = 12
LAST_USED_RESOLUTION_SECONDS = 60.0
UNAUTHORIZED_MESSAGE = "authentication required: send a valid API key in X-API-Key or Authorization: Bearer"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def assign_new_key(key: ApiKey) -> str:
    """Give an unsaved ApiKey a fresh random key and return the raw key, which is never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key.prefix, key.key_hash = raw[:PREFIX_LENGTH], hash_key(raw)
    return raw


def issue_key(name: str, role: str = policy.ADMIN, node_ids: list[str] | None = None) -> tuple[ApiKey, str]:
    """Create an active key with `role` (agent keys: `node_ids` reserved for it) and return it with the raw key."""
    key = ApiKey(name=name, role=role, node_ids=list(node_ids or []))
    raw = assign_new_key(key)
    key.save()
    return key, raw


def revoke_key(key: ApiKey) -> bool:
    """Revoke `key` now; this process stops accepting it at once, the others within the cache TTL."""
    revoked = key.revoke(timezone.now())
    forget_keys()
    return revoked


@dataclass
class _Snapshot:
    """The active keys (hash -> principal) as one process last read them."""

    hashes: dict[str, policy.Principal]
    loaded_at: float
    touched: dict[int, float] = field(default_factory=dict)


_snapshot: _Snapshot | None = None


def forget_keys() -> None:
    """Drop this process's cached key set (other processes reload within the cache TTL)."""
    global _snapshot
    _snapshot = None


def remember_no_keys() -> None:
    """Record that no active key exists without asking the database (a fresh test database)."""
    global _snapshot
    _snapshot = _Snapshot(hashes={}, loaded_at=time.monotonic())


def _active_keys() -> _Snapshot:
    global _snapshot
    snapshot = _snapshot
    if snapshot is None or time.monotonic() - snapshot.loaded_at > settings.AGENTFIELD_API_KEY_CACHE_SECONDS:
        try:
            rows = ApiKey.objects.filter(revoked_at__isnull=True).values_list("key_hash", "pk", "role", "node_ids")
            hashes = {row[0]: policy.Principal(row[1], row[2], frozenset(row[3] or ())) for row in rows}
        except DatabaseError as error:
            # While the database is away the keys this process last saw still hold, so an agent's
            # callback reaches its view (which keeps what it cannot store, see callback_spool).
            if snapshot is None or not availability.is_unavailable(error):
                raise
            return snapshot
        snapshot = _snapshot = _Snapshot(hashes=hashes, loaded_at=time.monotonic())
    return snapshot


def credentials_without_database(raw: str | None, has_session: bool) -> bool | None:
    """Whether a request may send a body, from this process's cached key set alone (no query).

    True: no key exists, or `raw` is an active key. False: keys are required and none came (or,
    per a fresh key set, a wrong one). None when it cannot tell: no key set read yet, a key the
    cached set may be too old to know, or a session that Django must check.
    """
    snapshot = _snapshot
    if snapshot is None:
        return None
    fresh = time.monotonic() - snapshot.loaded_at <= settings.AGENTFIELD_API_KEY_CACHE_SECONDS
    if not snapshot.hashes:
        return True if fresh else None
    if has_session:
        return None
    if raw is None:
        return False  # keys exist (they are revoked one by one, rarely all at once): no credentials at all
    if hash_key(raw) in snapshot.hashes:
        return True
    return False if fresh else None


def keys_required() -> bool:
    """Whether at least one active key exists (cached for AGENTFIELD_API_KEY_CACHE_SECONDS)."""
    return bool(_active_keys().hashes)


def presented_key(request: HttpRequest) -> str | None:
    """The key from X-API-Key or `Authorization: Bearer`; the query string is never read."""
    if key := request.headers.get("X-API-Key", "").strip():
        return key
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def match_key(raw: str | None) -> policy.Principal | None:
    """The principal of the active key `raw`, recording its use at most once a minute per process."""
    if not raw:
        return None
    snapshot = _active_keys()
    principal = snapshot.hashes.get(hash_key(raw))
    if principal is None:
        return None
    pk = principal.key_id
    if time.monotonic() - snapshot.touched.get(pk, -1e9) > LAST_USED_RESOLUTION_SECONDS:
        try:
            # On the event loop this raises SynchronousOnlyOperation before writing, and the
            # request goes to the thread path (runtime/direct.py): so the use is marked after it.
            ApiKey.objects.filter(pk=pk).update(last_used_at=timezone.now())
        except DatabaseError as error:  # a bookkeeping write: never the reason a request fails
            if not availability.is_unavailable(error):
                raise
        snapshot.touched[pk] = time.monotonic()
    return principal


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def authenticate_request(request: HttpRequest) -> policy.Principal | None:
    """Who a plain view serves: anyone while no key exists, a valid key's principal, or staff reading."""
    if not keys_required():
        return policy.OPEN
    if (principal := match_key(presented_key(request))) is not None:
        return principal
    return policy.STAFF if request.method in SAFE_METHODS and _is_staff(request) else None


async def aauthenticate_request(request: HttpRequest) -> policy.Principal | None:
    """`authenticate_request` for async views (it may read the database)."""
    return await sync_to_async(authenticate_request)(request)


def principal_of(request) -> policy.Principal:
    """The principal of a DRF request that passed `HasApiKey` (a key's, staff's, or the open API's)."""
    if isinstance(request.auth, policy.Principal):
        return request.auth
    return policy.STAFF if _is_staff(request) else policy.OPEN


def unauthorized_response() -> JsonResponse:
    """The one refusal every unauthenticated request gets, from DRF and plain views alike."""
    response = JsonResponse({"error": UNAUTHORIZED_MESSAGE, "code": "not_authenticated"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


class ApiKeyRequired(exceptions.NotAuthenticated):
    default_detail = UNAUTHORIZED_MESSAGE
    default_code = "not_authenticated"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a request carrying an active key; `request.auth` is then its `policy.Principal`."""

    def authenticate(self, request):
        raw = presented_key(request)
        if raw is None or not keys_required():
            return None
        principal = match_key(raw)
        if principal is None:
            raise ApiKeyRequired()
        return (None, principal)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class HasApiKey(permissions.BasePermission):
    """Allow when no key exists yet, when a valid key was sent, or for a staff session."""

    def has_permission(self, request, view) -> bool:
        if request.auth is not None or not keys_required():
            return True
        if _is_staff(request):
            return True
        raise ApiKeyRequired()


@receiver([post_save, post_delete], sender=ApiKey)
def _keys_changed(**kwargs) -> None:
    forget_keys()
