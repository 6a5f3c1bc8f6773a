"""Re-encrypt stored webhook secrets and headers with the current key (after a key rotation)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webhooks.services import reseal_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored webhook secret and header set with the first key of AGENTFIELD_SECRET_KEYS "
        "(rotation: put the new key first, keep the old ones, run this, then drop the old keys)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        resealed, unreadable = reseal_secrets()
        self.stdout.write(f"resealed {resealed} webhook(s)")
        if unreadable:
            raise CommandError(
                f"{unreadable} webhook(s) could not be decrypted with any key in AGENTFIELD_SECRET_KEYS; "
                "they were left as they were"
            )
