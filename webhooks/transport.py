"""One webhook POST, with the destination pinned to the address the guard approved.

The name is resolved once; the connection goes to the approved IP while the URL keeps the real
host name, so the Host header, TLS SNI and certificate verification all use that name. Redirects
are not followed, environment proxies are ignored (they would bypass the guard), the response
read is capped in decoded bytes, and a watchdog enforces one deadline for the whole attempt.
Every outcome is a `DeliveryResult`; nothing here raises for I/O.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from agentfield_project import netguard as guard

USER_AGENT = "AgentField-Webhooks/0.1"

Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt produced. `error_class` is None exactly when the receiver answered 2xx."""

    status_code: int | None
    error_class: str | None  # timeout | connect | dns | tls | blocked_destination | http_status | too_large
    error: str
    duration_ms: int
    response_body: str = ""
    retry_after: str | None = None
    address: str | None = None  # the IP actually connected to

    @property
    def ok(self) -> bool:
        return self.error_class is None


def resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver returns for `host`, in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class _Pin:
    """The approved address of one attempt, and the sockets the deadline watchdog may cut."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                sock.shutdown(socket.SHUT_RDWR)

    def expire(self) -> None:
        # Shutting the socket down wakes a recv blocked in another thread; a per-read timeout
        # alone would let a receiver dribble one byte at a time forever.
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _PinnedConnectionMixin:
    pin: _Pin

    def _new_conn(self) -> socket.socket:
        # Connect to the guard's address, never to a fresh DNS answer; `self.host` stays the URL's
        # name for Host, SNI and the certificate check.
        try:
            sock = urllib3_connection.create_connection(
                (self.pin.address, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"failed to connect: {exc}") from exc
        self.pin.track(sock)
        return sock


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    pass


class _PinnedPoolMixin:
    pin: _Pin

    def _new_conn(self):  # noqa: ANN202 - urllib3's own signature
        conn = super()._new_conn()
        conn.pin = self.pin
        return conn


class _PinnedHTTPPool(_PinnedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(_PinnedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, pin: _Pin) -> None:
        self.pin = pin
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PinnedHTTPPool, "https": _PinnedHTTPSPool}

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        pool = super().get_connection_with_tls_context(request, verify, None, cert)
        pool.pin = self.pin
        return pool


def _target(url: str, resolver: Resolver, allowed: Sequence[guard.IPNetwork]) -> tuple[str | None, str | None, str]:
    """(approved address, error class, error) for the URL's host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        return None, "connect", f"invalid url: {exc}"
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(resolver(host, port))
        except (OSError, UnicodeError) as exc:
            return None, "dns", f"could not resolve {host}: {exc}"
    if not addresses:
        return None, "dns", f"{host} has no address"
    chosen = guard.choose(addresses, allowed)
    if chosen is None:
        return None, "blocked_destination", f"{host} resolves only to refused addresses ({', '.join(addresses)})"
    return chosen, None, ""


def _read_capped(response: requests.Response, cap: int) -> tuple[bytes, bool]:
    """Up to `cap` decoded body bytes, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.raw.stream(min(cap, 64 * 1024) or 1, decode_content=True):
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
    return b"".join(chunks), False


def _text(raw: bytes) -> str:
    # PostgreSQL text cannot hold NUL; receivers may answer anything.
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _describe(exc: Exception) -> str:
    """The innermost reason of a requests error, without the retry-wrapper noise."""
    reason = exc.args[0] if exc.args else exc
    reason = getattr(reason, "reason", reason)
    return f"{exc.__class__.__name__}: {reason}"[:2000]


def _classify(exc: Exception, pin: _Pin) -> str:
    """The error class of a request that produced no response."""
    if pin.expired or isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if "LineTooLong" in repr(exc) or "got more than" in str(exc):
        return "too_large"
    return "connect"


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    response_cap: int,
    allowed: Sequence[guard.IPNetwork] = (),
    resolver: Resolver = resolve,
    verify: bool | str = True,
) -> DeliveryResult:
    """POST `body` once; from connect to the last body byte the attempt ends within `timeout` seconds."""
    started = time.monotonic()
    address, error_class, error = _target(url, resolver, allowed)
    if address is None:
        return DeliveryResult(None, error_class, error, _ms_since(started))
    pin = _Pin(address)
    watchdog = threading.Timer(timeout, pin.expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        return _exchange(url, body, headers, pin, timeout, response_cap, verify, started)
    finally:
        watchdog.cancel()


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _exchange(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    pin: _Pin,
    timeout: float,
    cap: int,
    verify: bool | str,
    started: float,
) -> DeliveryResult:
    with requests.Session() as session:
        session.trust_env = False  # an environment proxy would connect on our behalf, unchecked
        session.verify = verify
        session.mount("http://", _PinnedAdapter(pin))
        session.mount("https://", _PinnedAdapter(pin))
        headers = {**headers, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        try:
            response = session.post(
                url, data=body, headers=headers, timeout=(timeout, timeout), allow_redirects=False, stream=True
            )
        except Exception as exc:  # noqa: BLE001 - any transport failure is an attempt outcome
            return DeliveryResult(None, _classify(exc, pin), _describe(exc), _ms_since(started), address=pin.address)
        with response:
            if pin.expired:  # the watchdog cut a response whose head was still arriving
                error = f"no complete response within {timeout:g}s"
                return DeliveryResult(None, "timeout", error, _ms_since(started), address=pin.address)
            try:
                raw, truncated = _read_capped(response, cap)
                note = " (response truncated)" if truncated else ""
            except Exception as exc:  # noqa: BLE001 - the status decides; the body is only evidence
                why = "deadline reached" if pin.expired else exc.__class__.__name__
                raw, note = b"", f" (response body unreadable: {why})"
    status, retry_after = response.status_code, response.headers.get("Retry-After")
    duration, text = _ms_since(started), _text(raw)
    if 200 <= status < 300:
        return DeliveryResult(status, None, note.strip(), duration, text, retry_after, pin.address)
    error = f"non-2xx response: {status}{note}"
    return DeliveryResult(status, "http_status", error, duration, text, retry_after, pin.address)
