"""Calls from the control plane to agent nodes over HTTP; every outcome is a value."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

MAX_BODY_BYTES = 16 * 1024 * 1024
_local = threading.local()


@dataclass(frozen=True)
class AgentCallResult:
    status_code: int | None  # None: no HTTP answer (refused, timeout, DNS)
    body: Any = None  # parsed JSON, or the text when it is not JSON
    error: str = ""
    duration_ms: int = 0

    @property
    def accepted(self) -> bool:
        return self.status_code == 202

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        """A readable one-line account of what went wrong."""
        if self.status_code is None:
            return self.error
        detail = self.body
        if isinstance(detail, dict):
            detail = detail.get("detail") or detail.get("error") or detail.get("message") or detail
        text = detail if isinstance(detail, str) else json.dumps(detail)
        return storable_text(f"agent answered {self.status_code}: {text[:1024]}")


def storable_text(text: str) -> str:
    """`text` without what a PostgreSQL text column refuses (NUL, lone surrogates)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _session() -> requests.Session:
    # One session per thread: connections to agents are reused across dispatches.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.trust_env = False
    return session


def post_json(url: str, body: Any, headers: dict[str, str], timeout: float) -> AgentCallResult:
    """POST `body` as JSON to an agent; never raises for network or HTTP failures."""
    started = time.monotonic()
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        response = _session().post(
            url,
            data=data,
            headers={"Content-Type": "application/json", **headers},
            timeout=(min(5.0, timeout), timeout),
            allow_redirects=False,
            stream=True,
        )
        raw = response.raw.read(MAX_BODY_BYTES + 1, decode_content=True)
        response.close()
    except requests.Timeout as exc:
        return AgentCallResult(None, error=f"agent call timed out: {exc.__class__.__name__}", duration_ms=_ms(started))
    except requests.RequestException as exc:
        return AgentCallResult(None, error=f"agent call failed: {_reason(exc)}", duration_ms=_ms(started))
    if len(raw) > MAX_BODY_BYTES:
        return AgentCallResult(response.status_code, error="agent response too large", duration_ms=_ms(started))
    return AgentCallResult(response.status_code, _parse(raw), duration_ms=_ms(started))


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return f"{exc.__class__.__name__}: {text[:300]}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
