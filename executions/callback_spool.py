"""Terminal callbacks that arrived while the database was away, kept on disk until it is back.

The SDK retries a status callback for about 15 s (five attempts, 1-2-4-8 s apart) and then gives
up for good. After a longer outage the control plane would never learn the result, and the
execution would wait for a callback that is not coming. So when the callback view cannot store a
terminal status because the database is unavailable, it first writes the callback here (one file
per execution, written to a temporary name, fsynced and renamed into place) and only then answers
503. When the database answers again (this process's availability watch, and every server start)
the spool is replayed through the normal callback path: the first terminal status wins and a
repeat is accepted, so a callback that the SDK also managed to deliver later is harmless. Any
server process of the machine may replay any file.

Only a server process that dies with its disk (or a machine that is replaced) loses what it
spooled; that, and an agent that reaches no server at all for longer than its retries, is what
`reconcile` is for (see executions/recovery.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from agentfield_project.postgres import availability
from executions import callbacks
from executions.exceptions import ExecutionError
from nodes import policy
from nodes.exceptions import NodeError
from nodes.policy import Principal

logger = logging.getLogger(__name__)

SUFFIX = ".json"


def spool_dir() -> Path:
    return Path(settings.AGENTFIELD_CALLBACK_SPOOL_DIR)


def _path(execution_id: str) -> Path:
    return spool_dir() / (hashlib.sha256(execution_id.encode("utf-8", "surrogatepass")).hexdigest() + SUFFIX)


def keep(execution_id: str, body: dict[str, Any], received_at: datetime, principal: Principal = policy.OPEN) -> bool:
    """Write a terminal callback to the spool (the first one of an execution wins); False when full.

    Who sent it is kept with it: whether it may report on the execution is decided when it is
    applied (deciding needs the database).
    """
    path = _path(execution_id)
    if path.exists():
        return True
    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if sum(1 for _ in directory.glob("*" + SUFFIX)) >= settings.AGENTFIELD_CALLBACK_SPOOL_MAX_FILES:
        logger.error("callback spool %s is full; the callback of %s is not kept", directory, execution_id)
        return False
    record = {
        "execution_id": execution_id,
        "body": body,
        "received_at": received_at.isoformat(),
        "sender": {"key_id": principal.key_id, "role": principal.role, "node_ids": sorted(principal.node_ids)},
    }
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)  # atomic: a reader sees the whole file or none
    logger.info("kept the %s callback of %s until the database is back", body.get("status"), execution_id)
    return True


def pending() -> list[Path]:
    """Spooled callbacks, oldest first."""
    directory = spool_dir()
    if not directory.is_dir():
        return []
    return sorted(directory.glob("*" + SUFFIX), key=lambda path: path.stat().st_mtime)


def replay() -> int:
    """Apply every spooled callback; stop (leaving the rest) if the database goes away again."""
    applied = 0
    for path in pending():
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # another process replayed it (and removed it), or it is being written
        try:
            _apply(record)
        except Exception as error:
            if availability.is_unavailable(error):
                logger.warning("database went away again; %d spooled callbacks wait", len(pending()))
                return applied
            logger.exception("spooled callback of %s could not be applied; dropped", record.get("execution_id"))
        path.unlink(missing_ok=True)
        applied += 1
    if applied:
        logger.warning("applied %d callbacks kept while the database was away", applied)
    return applied


def _apply(record: dict[str, Any]) -> None:
    execution_id = record["execution_id"]
    received_at = parse_datetime(record["received_at"])
    sender = record.get("sender") or {}
    principal = Principal(sender.get("key_id"), sender.get("role", policy.ADMIN), frozenset(sender.get("node_ids", ())))
    try:
        callback = callbacks.parse_callback(record["body"])
        execution = callbacks.apply_callback(execution_id, callback, received_at, principal)
    except (ExecutionError, NodeError) as error:  # unknown, not its sender's, or another terminal status won
        logger.warning("spooled callback of %s not applied: %s", execution_id, error)
        return
    logger.info("spooled callback applied: %s is %s", execution_id, execution.status)
