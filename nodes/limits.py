"""Concurrency limits of a node and of its reasoners/skills (pure: executions/queue.py applies them).

A slot is held from the claim until the execution is terminal: while it is being handed over
(queued under a live lease), `running` or `waiting`. Work beyond a limit stays `queued`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_LIMIT = 100_000


def parse(metadata: Any) -> tuple[int | None, dict[str, int]] | None:
    """The limits an agent declares in its registration `metadata`, or None if it declares none.

    `{"max_concurrency": 4, "reasoner_concurrency": {"summarize": 2}}`; bad values are ignored
    one by one (a registration is never refused for them).
    """
    if not isinstance(metadata, Mapping) or not ({"max_concurrency", "reasoner_concurrency"} & metadata.keys()):
        return None
    total = _limit(metadata.get("max_concurrency"))
    per_target = metadata.get("reasoner_concurrency")
    targets = (
        {name: n for name, raw in per_target.items() if (n := _limit(raw)) is not None}
        if isinstance(per_target, Mapping)
        else {}
    )
    return total, targets


def _limit(raw: Any) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and 0 < raw <= MAX_LIMIT else None


def pick(
    candidates: list[tuple[str, str]],
    held: Mapping[str, int],
    total: int | None,
    per_target: Mapping[str, int],
    capacity: int,
) -> list[str]:
    """Ids among due (id, target) candidates, in order, that fit the free slots and `capacity`."""
    free_total = None if total is None else total - sum(held.values())
    taken: dict[str, int] = {}
    chosen: list[str] = []
    for execution_id, target in candidates:
        if len(chosen) >= capacity or (free_total is not None and len(chosen) >= free_total):
            break
        limit = per_target.get(target)
        if limit is not None and held.get(target, 0) + taken.get(target, 0) >= limit:
            continue
        taken[target] = taken.get(target, 0) + 1
        chosen.append(execution_id)
    return chosen
