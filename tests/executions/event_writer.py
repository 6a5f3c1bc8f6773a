"""A second process that writes lifecycle events, as a dispatcher or the API would.

Usage: python -m tests.executions.event_writer '<JSON list of commands>', each a list [verb, args...]:
  create <id> [target]        a queued execution and its execution_queued event
  complete <id>               succeeded (execution_completed)
  fail <id> <error>           failed (execution_failed)
  burst <prefix> <n> [bytes]  n queued executions whose events carry `bytes` of data each
Each command commits on its own. Prints the ids of the events it recorded, one per line.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")
django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from executions import events  # noqa: E402
from executions.models import Execution, ExecutionEvent  # noqa: E402


def create(execution_id: str, target: str = "echo.echo", payload: str = "") -> Execution:
    """A queued execution plus its execution_queued event, committed together."""
    now = timezone.now()
    node_id, name = target.split(".", 1)
    with transaction.atomic():
        execution = Execution.objects.create(
            id=execution_id,
            run_id=f"run_{execution_id}",
            node_id=node_id,
            target_name=name,
            run_at=now,
            created_at=now,
            updated_at=now,
        )
        events.record(execution, events.QUEUED, now, {"blob": payload} if payload else None)
    return execution


def newest_id() -> int:
    return ExecutionEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def run(verb: str, *args: str) -> None:
    if verb == "create":
        create(*args)
    elif verb == "complete":
        Execution.objects.get(pk=args[0]).complete({"ok": True}, timezone.now())
    elif verb == "fail":
        Execution.objects.get(pk=args[0]).fail(args[1], timezone.now())
    elif verb == "burst":
        prefix, count, size = args[0], int(args[1]), int(args[2]) if len(args) > 2 else 0
        for index in range(count):
            create(f"{prefix}{index}", payload="x" * size)
    else:
        raise SystemExit(__doc__)


def main(commands: str) -> None:
    before = newest_id()
    for command in json.loads(commands):
        run(*command)
    for event_id in ExecutionEvent.objects.filter(id__gt=before).order_by("id").values_list("id", flat=True):
        print(event_id)


if __name__ == "__main__":
    main(sys.argv[1])
