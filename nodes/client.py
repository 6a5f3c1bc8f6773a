"""Calls from the control plane to agent nodes over HTTP; every outcome is a value.

Agent calls are the dispatcher's hot path, so this is a small keep-alive client on the standard
library's `http.client` rather than `requests`: measured against the bench's stub agent, a
`requests.Session` POST costs ~650-900 µs of client CPU and `http.client` ~230-430 µs
(`bench/results/http-clients.md`). Each thread keeps one connection per agent address.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import json
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from agentfield_project import netguard

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_CONNECT_SECONDS = 5.0
MAX_CONNECTIONS_PER_THREAD = 64
USER_AGENT = "agentfield-control-plane"
_local = threading.local()
# A reused connection the agent closed while it sat idle fails with one of these before any
# answer arrives; the request is then sent once more on a fresh connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


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


class InvalidAgentUrl(ValueError):
    pass


class RefusedAgentAddress(InvalidAgentUrl):
    """The agent's address is not one the control plane may connect to (AGENTFIELD_AGENT_ALLOWED_CIDRS)."""


def agent_address(host: str, port: int) -> str:
    """The address to connect to for an agent at `host`: resolved, checked, pinned (raises if refused).

    Agents live on private networks, so the operator lists theirs in AGENTFIELD_AGENT_ALLOWED_CIDRS;
    public addresses are allowed too; link-local and metadata addresses never (agentfield_project/netguard.py).
    The connection goes to the address checked here, not to whatever the name resolves to later.
    """
    allowed = _allowed_networks(tuple(settings.AGENTFIELD_AGENT_ALLOWED_CIDRS))
    addresses = _resolve(host, port)
    chosen = netguard.choose(addresses, allowed, netguard.NEVER_AGENTS)
    if chosen is None:
        raise RefusedAgentAddress(
            f"{host} resolves only to addresses agents may not use ({', '.join(addresses)}); "
            "allow the agents' network in AGENTFIELD_AGENT_ALLOWED_CIDRS"
        )
    return chosen


@functools.lru_cache(maxsize=8)
def _allowed_networks(cidrs: tuple[str, ...]) -> tuple[netguard.IPNetwork, ...]:
    return netguard.parse_networks(cidrs, "AGENTFIELD_AGENT_ALLOWED_CIDRS")


_resolved: dict[tuple[str, int], tuple[list[str], float]] = {}
RESOLVE_TTL_SECONDS = 30.0


def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses (an IP literal is its own), cached briefly: dispatch is a hot path."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    cached = _resolved.get((host, port))
    if cached is not None and time.monotonic() < cached[1]:
        return cached[0]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InvalidAgentUrl(f"could not resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if len(_resolved) > 1024:
        _resolved.clear()
    _resolved[(host, port)] = (addresses, time.monotonic() + RESOLVE_TTL_SECONDS)
    return addresses


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with TLS verified for the agent's host name."""

    def __init__(self, address: str, port: int, server_hostname: str, **kwargs: Any) -> None:
        super().__init__(address, port, **kwargs)
        self.server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_hostname)


def post_json(url: str, body: Any, headers: dict[str, str], timeout: float) -> AgentCallResult:
    """POST `body` as JSON to an agent; never raises for network or HTTP failures."""
    started = time.monotonic()
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        status, raw = _post(url, data, all_headers, timeout)
    except TimeoutError as exc:
        return AgentCallResult(None, error=f"agent call timed out: {exc.__class__.__name__}", duration_ms=_ms(started))
    except (OSError, http.client.HTTPException, InvalidAgentUrl) as exc:
        return AgentCallResult(None, error=f"agent call failed: {_reason(exc)}", duration_ms=_ms(started))
    if len(raw) > MAX_BODY_BYTES:
        return AgentCallResult(status, error="agent response too large", duration_ms=_ms(started))
    return AgentCallResult(status, _parse(raw), duration_ms=_ms(started))


def _post(url: str, data: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidAgentUrl(f"not an http(s) URL: {url[:200]!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidAgentUrl(f"invalid port in {url[:200]!r}") from exc
    key = (parts.scheme, parts.hostname, port, agent_address(parts.hostname, port))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**headers, "Host": parts.netloc}  # the name the agent knows itself by, not the pinned address
    connection, reused = _connection(key, timeout)
    try:
        return _exchange(connection, path, data, headers)
    except _STALE:
        _discard(key)
        if not reused:
            raise
    connection, _ = _connection(key, timeout)
    try:
        return _exchange(connection, path, data, headers)
    except BaseException:
        _discard(key)
        raise


def _exchange(connection: http.client.HTTPConnection, path: str, data: bytes, headers: dict[str, str]):
    try:
        connection.request("POST", path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read(MAX_BODY_BYTES + 1)
    except BaseException:
        connection.close()
        raise
    if len(raw) > MAX_BODY_BYTES or not response.isclosed():
        connection.close()  # the rest of an oversized body is never read: the connection is spent
    return response.status, raw


ConnectionKey = tuple[str, str, int, str]  # scheme, host name, port, the checked address


def _connections() -> dict[ConnectionKey, http.client.HTTPConnection]:
    pool = getattr(_local, "connections", None)
    if pool is None:
        pool = _local.connections = {}
    return pool


def _connection(key: ConnectionKey, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
    """This thread's connection to `key`, connected; and whether it was used before."""
    pool = _connections()
    connection = pool.get(key)
    if connection is not None and connection.sock is not None and not _dropped(connection.sock):
        connection.sock.settimeout(timeout)
        return connection, True
    if connection is not None:
        connection.close()
    scheme, host, port, address = key
    connect_timeout = min(MAX_CONNECT_SECONDS, timeout)
    if scheme == "https":
        context = ssl.create_default_context()
        connection = _PinnedHTTPSConnection(address, port, host, timeout=connect_timeout, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=connect_timeout)
    pool.pop(key, None)
    if len(pool) >= MAX_CONNECTIONS_PER_THREAD:  # agents that moved away: forget the oldest
        pool.pop(next(iter(pool))).close()
    pool[key] = connection
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection.sock.settimeout(timeout)  # connect has its own, shorter deadline
    return connection, False


def _discard(key: ConnectionKey) -> None:
    connection = _connections().pop(key, None)
    if connection is not None:
        connection.close()


def _dropped(sock: socket.socket) -> bool:
    # An idle keep-alive socket has nothing to read; readable means the agent closed it (or
    # sent something unasked), so it cannot carry the next request.
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _parse(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _reason(exc: Exception) -> str:
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in str(exc):
        return "connection refused"
    return f"{exc.__class__.__name__}: {str(exc)[:300]}"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
