"""Serve the control plane with daphne, refusing a non-loopback address without an API key or a set secret key."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from agentfield_project.runtime import server
from agentfield_project.secret_key import is_weak
from nodes.models import ApiKey

INSECURE_MESSAGE = (
    "Refusing to listen on {host}: no API key exists, so anyone who can reach this address could use the API. "
    "Create a key first with `python manage.py create_api_key <name> --role admin` (and agent keys with "
    "`--role agent`, which agents set as AGENTFIELD_API_KEY), "
    "or listen on 127.0.0.1, or set AGENTFIELD_ALLOW_INSECURE_BIND=true to accept an open API."
)

WEAK_KEY_REFUSAL = (
    "Refusing to listen on {host}: DJANGO_SECRET_KEY is not set (or is the old public default), and the key "
    "generated in var/secret_key is fit for this machine only. Set DJANGO_SECRET_KEY to the same long random "
    "value on every server and dispatcher, or listen on 127.0.0.1."
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


def refuse_weak_secret_key(host: str) -> None:
    """Raise CommandError for a non-loopback host while SECRET_KEY is generated or public."""
    if not is_loopback(host) and is_weak(settings.SECRET_KEY, settings.AGENTFIELD_SECRET_KEY_GENERATED):
        raise CommandError(WEAK_KEY_REFUSAL.format(host=host))


class Command(BaseCommand):
    help = "Run daphne on HOST:PORT in one or more processes (a public address needs an API key and DJANGO_SECRET_KEY)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)
        parser.add_argument(
            "--processes",
            type=int,
            default=None,
            help="daphne processes sharing the socket (default: AGENTFIELD_SERVER_PROCESSES)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        processes = options["processes"] or settings.AGENTFIELD_SERVER_PROCESSES
        if processes < 1:
            raise CommandError("--processes must be at least 1")
        refuse_weak_secret_key(host)
        refuse_insecure_bind(host)
        connections.close_all()
        try:
            sys.exit(server.serve(host, port, processes))
        except server.UnsupportedAddress as exc:
            raise CommandError(str(exc)) from None
