"""The SDK's status vocabulary, normalised (pure; mirrors the SDK's `status.normalize_status`)."""

from __future__ import annotations

CANONICAL = ("pending", "queued", "waiting", "running", "succeeded", "failed", "cancelled", "timeout")
TERMINAL = ("succeeded", "failed", "cancelled", "timeout")

ALIASES = {
    "success": "succeeded",
    "successful": "succeeded",
    "completed": "succeeded",
    "complete": "succeeded",
    "done": "succeeded",
    "ok": "succeeded",
    "error": "failed",
    "failure": "failed",
    "errored": "failed",
    "canceled": "cancelled",
    "cancel": "cancelled",
    "timed_out": "timeout",
    "wait": "waiting",
    "awaiting_approval": "waiting",
    "in_progress": "running",
    "processing": "running",
}


def normalize(raw: object) -> str | None:
    """The canonical status for `raw` (trimmed, case-insensitive, aliases applied), else None."""
    if not isinstance(raw, str):
        return None
    value = raw.strip().lower()
    value = ALIASES.get(value, value)
    return value if value in CANONICAL else None
