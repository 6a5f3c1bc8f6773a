"""The webhook wire format: signatures and headers (pure; no Django).

One key signs both schemes: the secret's UTF-8 bytes, exactly as registered. So the GitHub-style
recipe `hmac.new(SECRET.encode(), raw_body, sha256)` verifies `X-AgentField-Signature`, and a
Standard Webhooks library verifies `webhook-signature` when given the same bytes
(`standardwebhooks.Webhook(SECRET.encode())`, or the string `"whsec_" + base64(SECRET.encode())`).
A secret that merely looks like `whsec_<base64>` is *not* base64-decoded: "whsec_your_signing_secret"
is not valid base64, and one rule for every secret means no receiver has to guess which applies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "X-AgentField-Signature"


def body_signature(key: bytes, body: bytes) -> str:
    """`sha256=<lower-case hex HMAC-SHA256(key, body)>`, the X-AgentField-Signature value."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, the Standard Webhooks signature."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def verify_body_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the X-AgentField-Signature of `body` under `secret` (constant time)."""
    if not header or not secret:
        return False
    return hmac.compare_digest(body_signature(secret.encode(), body), header.strip())


def delivery_headers(
    *,
    delivery_id: str,
    event: str,
    attempt: int,
    timestamp: int,
    body: bytes,
    secret: str = "",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every header of one attempt; the registered extra headers cannot override ours."""
    headers = dict(extra or {})
    headers.update(
        {
            "Content-Type": "application/json",
            "X-AgentField-Event": event,
            "X-AgentField-Delivery": delivery_id,
            "X-AgentField-Attempt": str(attempt),
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
        }
    )
    if secret:
        key = secret.encode()
        headers[SIGNATURE_HEADER] = body_signature(key, body)
        headers["webhook-signature"] = standard_signature(key, delivery_id, timestamp, body)
    return headers
