"""Cost of the 10,000th checkpoint: one `memory/set` of a 10,000-element `results` list (~1 MB).

The batch agent re-sets its whole `results` list after every item, so the last checkpoints of a
big corpus are the expensive ones. This times that request end to end:

    DATABASE_URL=... python bench/memory_checkpoint.py                 # in-process (Django test client)
    python bench/memory_checkpoint.py --url http://127.0.0.1:8080      # HTTP against a running server

and, in-process, the upsert statement alone (`executions.memory.set_entry`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")

SUMMARY = "SUMMARY[16b7b02e]: a three-sentence summary of the document, about as long as a real one. " * 1


def results_list(size: int) -> list[dict]:
    return [{"item": i, "summary": f"{SUMMARY}#{i}"} for i in range(size)]


def timed(call, repeat: int) -> list[float]:
    call()  # warm-up: first-row insert, connection, caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    print(f"{label:<42} median {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})")


def over_http(url: str, body: bytes, headers: dict[str, str], repeat: int) -> None:
    def call() -> None:
        request = urllib.request.Request(f"{url}/api/v1/memory/set", data=body, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    report("HTTP POST /api/v1/memory/set", timed(call, repeat))
    delete = json.dumps({"key": "results"}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/memory/delete", data=delete, headers=headers))


def in_process(body: bytes, headers: dict[str, str], data: list[dict], repeat: int) -> None:
    import django

    django.setup()
    from django.test import Client
    from django.utils import timezone

    from executions import memory
    from executions.models import MemoryEntry

    client = Client()
    run_id = headers["X-Workflow-ID"]

    def request() -> None:
        response = client.post("/api/v1/memory/set", data=body, content_type="application/json", headers=headers)
        assert response.status_code == 200, response.content[:300]

    try:
        report("Django test client POST /api/v1/memory/set", timed(request, repeat))
        ref = memory.ScopeRef(memory.WORKFLOW, run_id)
        report(
            "set_entry() upsert alone", timed(lambda: memory.set_entry(ref, "results", data, timezone.now()), repeat)
        )
    finally:
        MemoryEntry.objects.filter(scope=memory.WORKFLOW, scope_id=run_id).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="base URL of a running control plane (default: in-process)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    data = results_list(args.items)
    body = json.dumps({"key": "results", "data": data}).encode()
    headers = {"Content-Type": "application/json", "X-Workflow-ID": f"run_bench_{uuid.uuid4().hex[:12]}"}
    print(f"checkpoint #{args.items}: results list of {args.items} entries, request body {len(body) / 1e6:.2f} MB")
    if args.url:
        over_http(args.url.rstrip("/"), body, headers, args.repeat)
    else:
        in_process(body, headers, data, args.repeat)


if __name__ == "__main__":
    main()
