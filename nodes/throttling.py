"""Per-key rate limits (429 + Retry-After) and the per-key cap on open event streams.

A view opts in with `throttle_scope` ("execute", "node", "query"); AGENTFIELD_RATE_LIMITS gives
each scope a rate like "200/s:400" (200 a second, bursts of 400). Only API keys are limited:
staff sessions are people, and a server without keys is a loopback development server.
Node routes are counted per key and node id, so one agent key may serve many nodes.

The buckets live in each server process, not in PostgreSQL, on purpose:
- a limit exists to shed load before it costs the database anything; a counter row per key would
  make every request of a busy key an UPDATE of one hot row, serialised on its row lock;
- a limit must keep working while the database is unavailable (heartbeats keep coming then).
The price: the budget is per process, so a key may reach N times the rate across N server
processes (`serve --processes N`, or N machines); set rates per process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import JsonResponse
from rest_framework.throttling import BaseThrottle

from nodes import policy

UNITS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
STREAM_RETRY_SECONDS = 5


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


@dataclass(frozen=True)
class Bucket:
    tokens: float
    stamp: float


def parse_rate(text: str) -> Rate | None:
    """ "200/s:400" -> 200 a second with bursts of 400; "600/min" (burst = one unit's worth); "" -> None."""
    text = text.strip()
    if not text:
        return None
    spec, _, burst = text.partition(":")
    count, _, unit = spec.partition("/")
    try:
        per_second = float(count) / UNITS[unit.strip().lower() or "s"]
        size = int(burst) if burst else max(1, math.ceil(float(count)))
    except (KeyError, ValueError):
        raise ValueError(f"rate {text!r} is not like '200/s' or '600/min:100'") from None
    if per_second <= 0 or size < 1:
        raise ValueError(f"rate {text!r} must be positive")
    return Rate(per_second, size)


def take(bucket: Bucket | None, now: float, rate: Rate) -> tuple[Bucket, float]:
    """Spend one token: the new bucket and 0.0, or the unchanged level and the seconds until one is due."""
    level = rate.burst if bucket is None else min(rate.burst, bucket.tokens + (now - bucket.stamp) * rate.per_second)
    if level >= 1:
        return Bucket(level - 1, now), 0.0
    return Bucket(level, now), (1 - level) / rate.per_second


class Limiter:
    """Token buckets by name, in this process; the least recently used are forgotten past `capacity`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, capacity: int = 100_000) -> None:
        self._clock = clock
        self._capacity = capacity
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, name: str, rate: Rate) -> float:
        """0.0 when the request may go ahead, else the seconds to wait."""
        with self._lock:
            bucket, wait = take(self._buckets.pop(name, None), self._clock(), rate)
            self._buckets[name] = bucket
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
            return wait


LIMITER = Limiter()


def rate_wait(principal: policy.Principal, scope: str, subject: str = "") -> float:
    """Seconds `principal` must wait before its next `scope` request (0.0: go ahead)."""
    if principal.key_id is None:
        return 0.0
    rate = parse_rate(settings.AGENTFIELD_RATE_LIMITS.get(scope, ""))
    if rate is None:
        return 0.0
    return LIMITER.acquire(f"{principal.key_id}/{scope}/{subject}", rate)


def too_many(message: str, wait: float) -> JsonResponse:
    response = JsonResponse({"error": message, "code": "throttled"}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def refusal(principal: policy.Principal, scope: str) -> JsonResponse | None:
    """The 429 for a plain (non-DRF) view over its key's rate, or None."""
    wait = rate_wait(principal, scope)
    return too_many(f"rate limit of this API key exceeded; retry in {math.ceil(wait)} s", wait) if wait else None


class KeyRateThrottle(BaseThrottle):
    """DRF's hook: views with a `throttle_scope` are limited per API key (per node id on node routes)."""

    def allow_request(self, request, view) -> bool:
        from nodes.auth import principal_of

        scope = getattr(view, "throttle_scope", None)
        if scope is None:
            return True
        subject = view.kwargs.get("node_id", "") if scope == "node" else ""
        self._wait = rate_wait(principal_of(request), scope, subject)
        return self._wait == 0.0

    def wait(self) -> float:
        return self._wait


class StreamCounter:
    """Open event streams per API key in this process, capped by AGENTFIELD_MAX_STREAMS_PER_KEY."""

    def __init__(self) -> None:
        self._open: dict[int, int] = {}
        self._lock = threading.Lock()

    def try_open(self, principal: policy.Principal) -> bool:
        """Take a place for a new stream (True), or refuse it at the cap; keys only are counted."""
        key = principal.key_id
        if key is None:
            return True
        with self._lock:
            if self._open.get(key, 0) >= settings.AGENTFIELD_MAX_STREAMS_PER_KEY:
                return False
            self._open[key] = self._open.get(key, 0) + 1
            return True

    def close(self, principal: policy.Principal) -> None:
        key = principal.key_id
        if key is None:
            return
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)

    def count(self, key_id: int) -> int:
        return self._open.get(key_id, 0)


STREAMS = StreamCounter()
