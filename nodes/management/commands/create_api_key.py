"""Create an API key and print it once (only its hash is stored)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from nodes.auth import issue_key


class Command(BaseCommand):
    help = "Create an API key named NAME and print it once. Once a key exists, the API requires one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="who or what uses the key, e.g. 'agents' or 'ci'")

    def handle(self, *args: Any, **options: Any) -> None:
        key, raw = issue_key(options["name"])
        self.stdout.write(raw)
        self.stderr.write(
            f"Created API key '{key.name}' ({key.prefix}…). It is shown only now: store it, then send it as "
            "`X-API-Key: <key>` (agents: AGENTFIELD_API_KEY=<key>) or `Authorization: Bearer <key>`."
        )
