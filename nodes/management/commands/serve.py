"""Serve the control plane with daphne, refusing a non-loopback address while no API key exists."""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from nodes.models import ApiKey

INSECURE_MESSAGE = (
    "Refusing to listen on {host}: no API key exists, so anyone who can reach this address could use the API. "
    "Create a key first with `python manage.py create_api_key <name>` (agents then set AGENTFIELD_API_KEY), "
    "or listen on 127.0.0.1, or set AGENTFIELD_ALLOW_INSECURE_BIND=true to accept an open API."
)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (an unknown host name counts as public)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_insecure_bind(host: str) -> None:
    """Raise CommandError for a non-loopback host while no active API key exists (unless allowed)."""
    if is_loopback(host) or settings.AGENTFIELD_ALLOW_INSECURE_BIND:
        return
    if not ApiKey.objects.filter(revoked_at__isnull=True).exists():
        raise CommandError(INSECURE_MESSAGE.format(host=host))


class Command(BaseCommand):
    help = "Run daphne on HOST:PORT (secure by default: a public address needs an API key)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        refuse_insecure_bind(host)
        connections.close_all()
        sys.stdout.flush()
        args = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "agentfield_project.asgi:application"]
        os.execv(sys.executable, args)  # noqa: S606 - replaces this process: signals go straight to daphne
