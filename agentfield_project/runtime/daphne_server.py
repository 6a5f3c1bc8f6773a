"""daphne with the request intake of agentfield_project/runtime/intake.py and an access log without credentials.

`python -m agentfield_project.runtime.daphne_server` takes daphne's own arguments. Its server differs
from daphne's in these ways:
- each request is judged (`intake.verdict`) once its headers are in, before Twisted buffers its
  body: too large (declared or counted) is a 413, a body without credentials a 401, both JSON,
  and the connection is closed without reading the rest;
- a request whose line, headers and body take longer than AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS
  is answered 408 and closed (a client trickling bytes cannot hold a connection forever);
- a request Twisted cannot parse is answered with a JSON error, not an empty 400 or a closed
  connection: 431 for a request line or headers over 16 KiB, 400 for a malformed line, header or
  chunked body;
- the access log is off unless AGENTFIELD_ACCESS_LOG is set, and its line is redacted
  (agentfield_project/redaction.py): a key sent in a query string never reaches the log.

daphne offers no hook for the request class of its HTTP factory; `GuardedServer.run` gives it
one by installing `GuardedHTTPFactory` under the name daphne's `Server.run` builds. The tests
(tests/agentfield_project/test_daphne_server.py) fail if a new daphne stops using it.
"""

from __future__ import annotations

import gc
import sys

from daphne import server as daphne_server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from django.conf import settings
from django.urls import get_resolver
from twisted.internet import reactor, task
from twisted.web import http

from agentfield_project.redaction import redact
from agentfield_project.runtime import flow, intake


class GuardedRequest(WebRequest):
    """daphne's request, judged before its body is read and bounded in how long it may take to arrive."""

    def __init__(self, *args, **kwargs) -> None:
        self._refused = False
        self._received = 0
        # Created when the request line arrives: the deadline covers the headers and the body.
        _reading[self] = reactor.seconds() + settings.AGENTFIELD_REQUEST_READ_TIMEOUT_SECONDS
        # Twisted parses every POST's Content-Type (with the email package) to fill `request.args`
        # with form fields; daphne never reads them (Django parses the body), and it cost about 6%
        # of the server's CPU on the SDK's JSON POSTs (bench scenario 11).
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    def gotLength(self, length: int | None) -> None:  # noqa: N802 - Twisted's name
        headers = {name.lower(): values[-1] for name, values in self.requestHeaders.getAllRawHeaders()}
        refusal = intake.verdict(getattr(self.channel, "_path", b""), headers, length)
        if refusal is not None:
            self._refuse(refusal)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802
        if self._refused:
            return
        self._received += len(data)
        if self._received > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            self._refuse(intake.too_large())
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802
        self._stop_deadline()
        if not self._refused:
            super().requestReceived(command, path, version)

    def connectionLost(self, reason) -> None:  # noqa: N802
        self._stop_deadline()
        super().connectionLost(reason)

    def _too_slow(self) -> None:
        if not self._refused:
            self._refuse(intake.too_slow())

    def _refuse(self, refusal: intake.Refusal) -> None:
        """Answer `refusal` and close the connection; whatever else the client sends is dropped."""
        self._refused = True
        self._stop_deadline()
        self.requestHeaders.removeHeader(b"expect")  # no "100 Continue" after our answer
        self.channel.transport.write(refusal.response())
        self.channel.transport.loseConnection()

    def _stop_deadline(self) -> None:
        _reading.pop(self, None)


# Requests still being read, with their deadlines. One sweep a fraction of a second answers those
# past it: a timer per request (created, then cancelled once the body was in) cost 6% of a
# heartbeat's server CPU (bench scenario 11).
_reading: dict[GuardedRequest, float] = {}
SWEEP_SECONDS = 0.25


def _sweep_slow_requests() -> None:
    now = reactor.seconds()
    for request in [request for request, deadline in _reading.items() if deadline <= now]:
        _reading.pop(request, None)
        request._too_slow()


class GuardedChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 connection, answering what it cannot parse with a JSON error."""

    def lineReceived(self, line: bytes) -> None:  # noqa: N802
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse(intake.headers_too_large(self.totalHeadersSize))
            return
        super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:  # noqa: N802 - one line over MAX_LENGTH
        self._refuse(intake.headers_too_large(self.totalHeadersSize))

    def _respondToBadRequestAndDisconnect(self) -> None:  # noqa: N802 - Twisted's one answer to bad input
        self._refuse(intake.malformed())

    def _refuse(self, refusal: intake.Refusal) -> None:
        self.transport.write(refusal.response())
        self.loseConnection()


class GuardedHTTPFactory(HTTPFactory):
    def protocol(self):  # Twisted builds each connection's protocol by calling this
        return http._GenericHTTPChannelProtocol(GuardedChannel())

    def buildProtocol(self, addr):  # noqa: N802
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = GuardedRequest
        return protocol

    def log(self, request) -> None:
        # Twisted formats a combined-log line for every request and hands it to its own logging,
        # where nothing writes it (daphne keeps its access log apart: RedactedAccessLog): 3% of a
        # heartbeat's server CPU (bench scenario 11), for nothing.
        pass


class RedactedAccessLog:
    """daphne's access log with credentials taken out of each request line."""

    def __init__(self, log) -> None:
        self.log = log

    def __call__(self, protocol, action, details) -> None:
        if "path" in details:
            details = {**details, "path": redact(details["path"])}
        self.log(protocol, action, details)


class GuardedServer(daphne_server.Server):
    def __init__(self, *args, action_logger=None, **kwargs) -> None:
        # A line per request written to stdout cost about 7% of the server's CPU on the SDK's hot
        # routes (bench scenario 11): off unless AGENTFIELD_ACCESS_LOG asks for it.
        if not settings.AGENTFIELD_ACCESS_LOG:  # daphne's CLI imported the application (and settings) first
            action_logger = None
        super().__init__(*args, action_logger=RedactedAccessLog(action_logger) if action_logger else None, **kwargs)

    def create_application(self, protocol, scope):
        # Back-pressure for streams (runtime/flow.py) needs the Twisted request behind an HTTP
        # scope: hand it over in the scope instead of having the app dig it out of daphne's `send`.
        if scope.get("type") == "http":
            scope[flow.REQUEST_KEY] = protocol
        return super().create_application(protocol, scope)

    def run(self) -> None:
        daphne_server.HTTPFactory = GuardedHTTPFactory  # the factory Server.run builds (see the docstring)
        freeze_startup_objects()
        task.LoopingCall(_sweep_slow_requests).start(SWEEP_SECONDS, now=False)
        super().run()


def freeze_startup_objects() -> None:
    """Load the URL conf (and the views it imports), then exempt everything alive from the cyclic GC.

    What is loaded at startup (Django, DRF, Twisted, our modules: ~130k objects) lives as long as the
    process, yet every full collection walked it: under load one came every few seconds and held the
    GIL for 70-95 ms, stalling every request at once (bench scenario 3: the slowest 1% of submits,
    clustered in those moments). Objects made later are collected as before.
    """
    get_resolver().url_patterns  # noqa: B018 - imports the views now rather than on the first request
    gc.collect()
    gc.freeze()


class GuardedCommandLine(CommandLineInterface):
    server_class = GuardedServer


def main(argv: list[str] | None = None) -> None:
    GuardedCommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
