"""A logging filter that keeps credentials out of log output (installed on every handler)."""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
_HEADER_NAMES = (
    r"x-api-key|authorization|proxy-authorization|cookie|set-cookie|webhook-signature|svix-signature|"
    r"stripe-signature|x-hub-signature(?:-256)?|x-signature|x-agentfield-signature|api_key|apikey|"
    r"secret|password|token"
)
_PATTERNS = (
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), f"whsec_{REDACTED}"),
    (re.compile(r"afk_[A-Za-z0-9_-]+"), f"afk_{REDACTED}"),
    (re.compile(r"\bv1,[A-Za-z0-9+/=]{16,}"), f"v1,{REDACTED}"),
    (re.compile(r"\bsha256=[0-9a-fA-F]{32,}"), f"sha256={REDACTED}"),
    # A header or field name followed by its value, in "name: value", "name=value" or JSON form.
    (re.compile(rf"""(?i)(["']?(?:{_HEADER_NAMES})["']?\s*[:=]\s*["']?)(?:bearer\s+|basic\s+)?[^\s"',;}}\]]+"""),
     rf"\g<1>{REDACTED}"),
)  # fmt: skip


def redact(text: str) -> str:
    """`text` with every credential-looking value replaced by [REDACTED]."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with `redact`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logging's problem, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
