"""System checks of the trust settings: `manage.py check --deploy` fails on a key fit for one machine."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from agentfield_project.secret_key import is_weak
from nodes.throttling import parse_rate


@register()
def check_rate_limits(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every AGENTFIELD_RATE_LIMIT_* parses (a typo must not start a server without limits)."""
    errors = []
    for scope, text in settings.AGENTFIELD_RATE_LIMITS.items():
        try:
            parse_rate(text)
        except ValueError as exc:
            errors.append(Error(f"AGENTFIELD_RATE_LIMIT_{scope.upper()}: {exc}", id="nodes.E002"))
    return errors


@register(deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """DJANGO_SECRET_KEY is set, and not to the constant this project once shipped with."""
    if not is_weak(settings.SECRET_KEY, settings.AGENTFIELD_SECRET_KEY_GENERATED):
        return []
    return [
        Error(
            "DJANGO_SECRET_KEY is not set (or is the old public default): this machine uses the key generated "
            "in var/secret_key, which no other server or dispatcher shares",
            hint="Set DJANGO_SECRET_KEY to the same long random value on every machine, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`.",
            id="nodes.E001",
        )
    ]
