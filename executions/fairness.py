"""The fair order of the queue: higher priority first, then runs take turns.

Each execution gets a place (`fair_seq`) when it is inserted: one after the last place of its
run, but never behind the place the claims have reached (the FairClock row). The claim serves
places in order. A run that fans out 5,000 children takes places 1..5,000; a run arriving when
the claims are at place 100 takes 101, 102, ... and is served alongside the first run instead
of after it. This is start-time fair queueing with the run as the flow and a weight of 1; the
clock only moves when work is claimed, so a slow agent does not let an old backlog jump ahead
of newcomers (a wall-clock order would).

A batch of inserts reads its places in one query (`next_places`) just before its INSERT; two
inserts of one run that race may share a place, which only makes the turns coarser.
"""

from __future__ import annotations

from django.db import connection

# Both sub-selects are index look-ups: the clock's primary key and execution_run_fair_idx.
_LAST_PLACES = """
SELECT run.id, COALESCE(GREATEST(
    (SELECT value FROM executions_fairclock WHERE id = 1),
    (SELECT max(fair_seq) FROM executions_execution WHERE run_id = run.id)
), 0)
FROM unnest(%s::text[]) AS run(id)
"""

# The claim's part (executions/queue.py): move the clock up to the furthest place it leased.
ADVANCE_CLOCK = """
INSERT INTO executions_fairclock (id, value)
SELECT 1, max(fair_seq) FROM {claimed} HAVING max(fair_seq) IS NOT NULL
ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value WHERE executions_fairclock.value < EXCLUDED.value
"""

MIN_PRIORITY, MAX_PRIORITY = -1000, 1000


def next_places(run_ids: list[str]) -> list[int]:
    """The fair places of new executions of `run_ids`, in order (a run may be named many times): each
    after the last place of its run and of the ones before it here, never behind the clock."""
    with connection.cursor() as cursor:
        cursor.execute(_LAST_PLACES, [list(set(run_ids))])
        last = dict(cursor.fetchall())
    places = []
    for run_id in run_ids:
        last[run_id] = last[run_id] + 1
        places.append(last[run_id])
    return places
