"""System checks: a bad webhook setting fails `manage.py check` instead of the dispatcher loop."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from agentfield_project import netguard as guard


@register()
def check_webhook_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """AGENTFIELD_WEBHOOK_ALLOWED_CIDRS parses, and the limits are positive."""
    errors = []
    try:
        guard.parse_networks(settings.AGENTFIELD_WEBHOOK_ALLOWED_CIDRS)
    except ValueError as exc:
        errors.append(Error(str(exc), hint="Use networks such as 127.0.0.1/32 or ::1/128.", id="webhooks.E001"))
    for name in (
        "AGENTFIELD_WEBHOOK_MAX_ATTEMPTS",
        "AGENTFIELD_WEBHOOK_TIMEOUT_SECONDS",
        "AGENTFIELD_WEBHOOK_RESPONSE_CAP_BYTES",
        "AGENTFIELD_WEBHOOK_CONCURRENCY",
    ):
        if getattr(settings, name) <= 0:
            errors.append(Error(f"{name} must be positive", id="webhooks.E002"))
    return errors
