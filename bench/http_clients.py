"""`python -m bench.http_clients`: what one agent call costs the dispatcher, per HTTP client.

POSTs a small JSON body to the stub agent on loopback with `requests` (what the dispatcher used
before), `urllib3`, and `nodes.client.post_json` (`http.client`, what it uses now), from 1, 8 and
32 threads. Reports calls/s and the client process's CPU time per call: the CPU a dispatcher
spends per execution on HTTP alone, which bounds its drain rate on a given number of cores.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
import urllib3

from bench import procs

BODY = b'{"x":1}'
HEADERS = {"Content-Type": "application/json", "X-Execution-ID": "exec_bench"}


def _clients(url: str) -> dict[str, Callable[[], None]]:
    from nodes import client

    local = threading.local()
    pool = urllib3.PoolManager(maxsize=64)

    def with_requests() -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.trust_env = False
        response = session.post(url, data=BODY, headers=HEADERS, timeout=(5, 30), allow_redirects=False, stream=True)
        response.raw.read(1024, decode_content=True)
        response.close()

    def with_urllib3() -> None:
        response = pool.request(
            "POST", url, body=BODY, headers=HEADERS, timeout=30, redirect=False, preload_content=False, retries=False
        )
        response.read(1024)
        response.release_conn()

    def with_ours() -> None:
        assert client.post_json(url, {"x": 1}, {"X-Execution-ID": "exec_bench"}, 30).ok

    return {"requests": with_requests, "urllib3": with_urllib3, "nodes.client (http.client)": with_ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentfield_project.settings")
    stub = procs.StubAgent()
    try:
        print(f"cores: {os.cpu_count()}, calls per cell: {options.calls}\n")
        print("| client | threads | calls/s | client CPU per call (µs) |\n|---|---|---|---|")
        for name, call in _clients(stub.url + "/reasoners/noop").items():
            for threads in (1, 8, 32):
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(lambda _, call=call: call(), range(200)))  # connect and warm up
                    began, cpu = time.perf_counter(), time.process_time()
                    list(pool.map(lambda _, call=call: call(), range(options.calls)))
                    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
                print(f"| {name} | {threads} | {options.calls / wall:,.0f} | {cpu / options.calls * 1e6:,.0f} |")
    finally:
        stub.stop()


if __name__ == "__main__":
    main()
