"""The transport against real sockets on loopback: pinning, the guard, redirects, caps, deadline, TLS."""

from __future__ import annotations

import gzip
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.util import connection as urllib3_connection

from agentfield_project import netguard as guard
from tests.http_fakes import Receiver
from webhooks import transport

LOOPBACK = guard.parse_networks(["127.0.0.1/32"])


def post(url: str, **options) -> transport.DeliveryResult:
    options = {"timeout": 5.0, "response_cap": 1024, "allowed": LOOPBACK, **options}
    return transport.post(url, b'{"event":"x"}', {"Content-Type": "application/json"}, **options)


@pytest.fixture
def connect_spy(monkeypatch) -> list:
    """Every TCP connection the transport opens, by address."""
    calls: list = []
    real = urllib3_connection.create_connection

    def spy(address, *args, **kwargs):
        calls.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3_connection, "create_connection", spy)
    return calls


def test_posts_the_body_with_host_header_of_the_url(receiver):
    result = post(receiver.url("/hook"))
    assert result.ok and result.status_code == 200
    assert result.response_body == '{"ok": true}'
    assert result.address == "127.0.0.1"
    [request] = receiver.received
    assert request.body == b'{"event":"x"}'
    assert request.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["Accept-Encoding"] == "identity"
    assert request.headers["User-Agent"].startswith("AgentField-Webhooks/")


def test_refuses_loopback_outside_the_allowed_network(second_receiver, connect_spy):
    result = post(second_receiver.url("/hook"))
    assert result.error_class == "blocked_destination" and result.status_code is None
    assert second_receiver.connections == 0 and connect_spy == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://0.0.0.0/hook",  # noqa: S104 - the point of the test
    ],
)
def test_refuses_metadata_private_and_mapped_addresses_without_connecting(url, connect_spy):
    result = post(url)
    assert result.error_class == "blocked_destination"
    assert connect_spy == []


def test_refuses_a_hostname_resolving_to_a_private_address(second_receiver, connect_spy):
    names = {"hooks.example.com": ["127.0.0.2"], "metadata.example.com": ["169.254.169.254"]}
    for name in names:
        result = post(f"http://{name}:{second_receiver.port}/hook", resolver=lambda host, port: names[host])
        assert result.error_class == "blocked_destination"
        assert name in result.error
    assert second_receiver.connections == 0 and connect_spy == []


def test_connects_only_to_the_permitted_address_among_several(receiver, second_receiver):
    # Same port on both loopback addresses is not guaranteed; point the name at each receiver's port.
    resolver = make_resolver({"hooks.test": [["127.0.0.2", "127.0.0.1"]]})
    result = post(f"http://hooks.test:{receiver.port}/hook", resolver=resolver)
    assert result.ok and result.address == "127.0.0.1"
    assert receiver.received[0].headers["Host"] == f"hooks.test:{receiver.port}"
    assert second_receiver.connections == 0


def test_resolves_once_and_connects_to_that_answer_dns_rebinding(receiver, connect_spy):
    answers = {"rebind.test": [["127.0.0.1"], ["10.0.0.1"], ["169.254.169.254"]]}
    resolver = make_resolver(answers)
    result = post(f"http://rebind.test:{receiver.port}/hook", resolver=resolver)
    assert result.ok
    assert resolver.calls == ["rebind.test"]
    assert connect_spy == [("127.0.0.1", receiver.port)]


def test_does_not_follow_a_redirect_to_an_internal_url(receiver, second_receiver):
    receiver.script("/hook", (302, {"Location": second_receiver.url("/internal")}))
    result = post(receiver.url("/hook"))
    assert result.status_code == 302 and result.error_class == "http_status"
    assert "302" in result.error
    assert second_receiver.connections == 0


def test_dns_failure_and_refused_connection_are_classified(receiver):
    def failing(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert post("http://nowhere.test/hook", resolver=failing).error_class == "dns"
    assert post("http://nowhere.test/hook", resolver=lambda host, port: []).error_class == "dns"
    closed = Receiver()
    port = closed.port
    closed.stop()
    result = post(f"http://127.0.0.1:{port}/hook")
    assert result.error_class == "connect" and result.status_code is None


def test_environment_proxies_are_ignored(receiver, second_receiver, monkeypatch):
    proxy = Receiver()
    monkeypatch.setenv("HTTP_PROXY", proxy.url(""))
    monkeypatch.setenv("http_proxy", proxy.url(""))
    try:
        assert post(receiver.url("/hook")).ok
        assert proxy.connections == 0
    finally:
        proxy.stop()


def test_response_is_capped_and_the_status_decides(raw_server):
    server = raw_server(
        lambda conn, request: conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n" + b"y" * 100000)
    )
    result = post(server.url + "/hook", response_cap=10)
    assert result.status_code == 500 and result.error_class == "http_status"
    assert result.response_body == "y" * 10 and "truncated" in result.error


def test_a_gzip_bomb_is_capped_in_decoded_bytes(raw_server):
    bomb = gzip.compress(b"\0" * 5_000_000)
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n".encode()
    result = post(raw_server(lambda conn, request: conn.sendall(head + bomb)).url + "/hook", response_cap=100)
    assert result.ok
    assert len(result.response_body) == 100 and "\x00" not in result.response_body


def test_an_oversized_response_head_is_too_large(raw_server):
    headers = "".join(f"X-H{i}: v\r\n" for i in range(200))
    result = post(
        raw_server(lambda conn, request: conn.sendall(f"HTTP/1.1 200 OK\r\n{headers}\r\n".encode())).url + "/hook"
    )
    assert result.error_class == "too_large" and result.status_code is None


def test_a_response_head_dribbling_past_the_deadline_is_a_timeout(raw_server):
    stop = threading.Event()

    def dribble(conn, request):
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not stop.wait(0.2):
            conn.sendall(b"X-Slow: 1\r\n")

    try:
        result = post(raw_server(dribble).url + "/hook", timeout=1.0)
    finally:
        stop.set()
    assert result.error_class == "timeout" and result.status_code is None


def test_a_receiver_that_never_answers_is_a_timeout(raw_server):
    stop = threading.Event()
    try:
        result = post(raw_server(lambda conn, request: stop.wait(30)).url + "/hook", timeout=0.5)
    finally:
        stop.set()
    assert result.error_class == "timeout"


# --- TLS: the connection goes to the pinned IP, SNI and the certificate check use the name -------


def test_tls_verifies_the_certificate_of_the_url_hostname_on_the_pinned_address(certificates):
    server = Receiver(tls=certificates.server_context("hooks.test"))
    try:
        resolver = make_resolver({"hooks.test": [["127.0.0.1"]]})
        result = post(f"https://hooks.test:{server.port}/hook", resolver=resolver, verify=certificates.ca_path)
        assert result.ok, result.error
        assert server.received[0].headers["Host"] == f"hooks.test:{server.port}"
    finally:
        server.stop()


def test_tls_with_a_certificate_for_another_name_fails_as_tls(certificates):
    server = Receiver(tls=certificates.server_context("other.test"))
    try:
        resolver = make_resolver({"hooks.test": [["127.0.0.1"]]})
        result = post(f"https://hooks.test:{server.port}/hook", resolver=resolver, verify=certificates.ca_path)
        assert result.error_class == "tls"
        untrusted = post(f"https://hooks.test:{server.port}/hook", resolver=resolver)
        assert untrusted.error_class == "tls"
        assert server.received == []
    finally:
        server.stop()


# --- helpers ------------------------------------------------------------------------------------


def make_resolver(answers: dict[str, list[list[str]]]) -> Callable[[str, int], list[str]]:
    """A resolver seam: each call for a name returns its next answer (the last one repeats)."""

    def resolver(host: str, port: int) -> list[str]:
        resolver.calls.append(host)
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    resolver.calls = []
    return resolver


class Certificates:
    """A throwaway CA and server certificates it signs."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
        self.ca_name = name
        self.ca = (
            self._builder(name, self.ca_key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_path = str(directory / "ca.pem")
        (directory / "ca.pem").write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(getattr(self, "ca_name", subject))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
        )

    def server_context(self, hostname: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]), key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{hostname}.pem", self.directory / f"{hostname}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


@pytest.fixture
def certificates(tmp_path) -> Certificates:
    return Certificates(tmp_path)
