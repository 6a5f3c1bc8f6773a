"""Create an API key with a role and print it once (only its hash is stored)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nodes import policy
from nodes.auth import issue_key


class Command(BaseCommand):
    help = (
        "Create an API key named NAME with a role and print it once. Once a key exists, the API requires one. "
        "Roles: admin (everything), client (fires executions, sees its own), agent (serves its nodes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="who or what uses the key, e.g. 'agents' or 'ci'")
        parser.add_argument("--role", required=True, choices=policy.ROLES, help="what the key may do")
        parser.add_argument(
            "--nodes", default="", help="agent keys: comma-separated node ids reserved for this key (e.g. batch,echo)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        node_ids = [node.strip() for node in options["nodes"].split(",") if node.strip()]
        if node_ids and options["role"] != policy.AGENT:
            raise CommandError("--nodes reserves node ids for an agent key: use it with --role agent")
        key, raw = issue_key(options["name"], options["role"], node_ids)
        self.stdout.write(raw)
        self.stderr.write(
            f"Created {key.role} API key '{key.name}' ({key.prefix}…). It is shown only now: store it, then send it "
            "as `X-API-Key: <key>` (agents: AGENTFIELD_API_KEY=<key>) or `Authorization: Bearer <key>`."
        )
