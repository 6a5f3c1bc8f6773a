"""`manage.py prune [--dry-run]`: apply the retention now (the dispatchers do it a batch at a time)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from executions import retention


class Command(BaseCommand):
    help = "Delete finished executions older than AGENTFIELD_RETENTION_DAYS and what is kept about them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
        parser.add_argument("--batch", type=int, default=500, help="executions per transaction")

    def handle(self, *args: Any, dry_run: bool, batch: int, **options: Any) -> None:
        now = timezone.now()
        before = retention.cutoff(now)
        if before is None:
            self.stdout.write("retention is off (AGENTFIELD_RETENTION_DAYS=0): nothing to prune")
            return
        if dry_run:
            self.stdout.write(
                f"would delete (finished before {before:%Y-%m-%d %H:%M}): {retention.would_prune(now).describe()}"
            )
            return
        total = retention.Pruned()
        while (pruned := retention.prune_batch(now, batch, total.resume_at)).executions:
            total.add(pruned)
            total.resume_at = pruned.resume_at
        self.stdout.write(f"deleted (finished before {before:%Y-%m-%d %H:%M}): {total.describe()}")
