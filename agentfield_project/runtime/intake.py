"""What the server refuses before it reads a request body: too large, or without credentials.

daphne (Twisted) reads a whole request body, to memory or a temporary file, before the
application sees the request: a 1 GiB upload without a key used to cost 1 GiB before its 401.
`verdict()` is asked once the headers are in and before any body byte is read
(agentfield_project/runtime/daphne_server.py): a declared length over the limit is a 413, and a body
sent to the API without valid credentials is a 401, at once. A chunked body is counted as it
arrives and refused at the limit.

Whether credentials are valid is the nodes app's knowledge (nodes/auth.py): it registers
`credentials` here, which answers from its cached key set without touching the database
(None when it cannot tell: the request is then read and judged by Django as before).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

GUARDED_PATHS = (b"/api/v1/", b"/api/ui/v1/")
# Open to anyone: health, and inbound webhooks, which prove themselves by their signature.
UNGUARDED_PATHS = (b"/api/v1/health", b"/api/v1/webhooks/")

# (API key or None, whether a session cookie came) -> True (may send a body), False (refuse), None (unknown)
CredentialCheck = Callable[[str | None, bool], bool | None]
credentials: CredentialCheck = lambda key, has_session: None  # noqa: E731 - replaced by nodes at start-up


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    code: str
    message: str

    def response(self) -> bytes:
        """A complete HTTP/1.1 response that closes the connection."""
        body = json.dumps({"error": self.message, "code": self.code}).encode()
        head = (
            f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + body


def too_large() -> Refusal:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return Refusal(
        413, "Payload Too Large", "payload_too_large", f"request body too large (the limit is {limit} bytes)"
    )


def too_slow() -> Refusal:
    seconds = settings.AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS
    return Refusal(408, "Request Timeout", "request_timeout", f"the request was not received within {seconds:g} s")


def headers_too_large(limit: int) -> Refusal:
    message = f"request line and headers too large (the limit is {limit} bytes)"
    return Refusal(431, "Request Header Fields Too Large", "headers_too_large", message)


def malformed() -> Refusal:
    message = "malformed HTTP request (request line, headers or chunked body)"
    return Refusal(400, "Bad Request", "malformed_request", message)


def unauthenticated() -> Refusal:
    message = "authentication required: send a valid API key in X-API-Key or Authorization: Bearer"
    return Refusal(401, "Unauthorized", "not_authenticated", message)


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key from X-API-Key or `Authorization: Bearer` (as nodes/auth.py reads it)."""
    if key := headers.get(b"x-api-key", b"").strip():
        return key.decode("latin-1")
    scheme, _, value = headers.get(b"authorization", b"").partition(b" ")
    return value.strip().decode("latin-1") if scheme.lower() == b"bearer" and value.strip() else None


def verdict(path: bytes, headers: dict[bytes, bytes], length: int | None) -> Refusal | None:
    """The refusal for a request whose headers are in and body is not (None: read it).

    `headers` maps lower-case names to values; `length` is the declared Content-Length, None for
    a chunked body.
    """
    if length is not None and length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return too_large()
    has_body = length is None or length > 0
    if has_body and path.startswith(GUARDED_PATHS) and not path.startswith(UNGUARDED_PATHS):
        allowed = credentials(presented_key(headers), b"sessionid=" in headers.get(b"cookie", b""))
        if allowed is False:
            return unauthenticated()
    return None
