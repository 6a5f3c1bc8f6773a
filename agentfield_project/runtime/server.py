"""Serve the ASGI application with daphne in one process, or in several on one listening socket.

One daphne runs Django's Python on one core (the GIL), so a single process cannot use a second
core however the request path is tuned. With `processes > 1` the supervisor binds the address
once, starts that many daphne children that all accept on the inherited socket (`--fd`),
forwards SIGTERM/SIGINT to them, and exits when they have exited; if one child dies, it stops
the others and exits with that child's status, so a process manager sees the failure. Each
child has its own database pool and its own LISTEN hub for the event stream.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

APPLICATION = "agentfield_project.asgi:application"
BACKLOG = 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1


def daphne_command(*extra: str) -> list[str]:
    """The daphne command line for the control plane with `extra` options (address or endpoint)."""
    return [sys.executable, "-m", "agentfield_project.runtime.daphne_server", *extra, APPLICATION]


def endpoint(host: str, port: int) -> str:
    """daphne's `-e` endpoint for host:port with our listen backlog.

    daphne's own `-b/-p` listen with Twisted's backlog of 50: two hundred clients connecting at
    once overflow it, and the kernel makes the rest retry their SYN after 1, 2, 4 ... 64 s.
    """
    interface = host.strip("[]").replace(":", "\\:")  # endpoint syntax escapes the colons of IPv6
    return f"tcp:port={port}:interface={interface}:backlog={BACKLOG}"


class UnsupportedAddress(ValueError):
    """Several processes can share an IPv4 address only (daphne adopts inherited sockets as IPv4)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening IPv4 TCP socket on host:port that child processes may inherit."""
    host = "127.0.0.1" if host == "localhost" else host
    try:
        socket.inet_aton(host)
    except OSError:
        raise UnsupportedAddress(f"{UnsupportedAddress.__doc__}: {host!r}") from None
    sock = socket.create_server((host, port), backlog=BACKLOG)
    sock.set_inheritable(True)
    return sock


def exit_status(returncode: int) -> int:
    """A child's return code as a shell reports it (128 + signal number when it was killed), never 0."""
    return 128 - returncode if returncode < 0 else returncode or 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a supervisor that is SIGKILLed must not leave
    # servers behind. Linux only; elsewhere the children outlive a killed supervisor.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


class Supervisor:
    """N daphne children sharing one listening socket; a stop signal reaches each of them once."""

    def __init__(self, sock: socket.socket, processes: int) -> None:
        self.sock = sock
        self.processes = processes
        self.children: list[subprocess.Popen] = []
        self.stop_requested: int | None = None  # the signal to forward, set by the handlers

    def request_stop(self, signum: int, frame: object = None) -> None:
        """Signal handler: only records the signal; run() forwards it."""
        self.stop_requested = signum

    def start(self) -> None:
        fd = self.sock.fileno()
        args = daphne_command("--fd", str(fd))
        for _ in range(self.processes):
            # Own process group: a terminal's Ctrl-C (or a killpg of ours) reaches only the
            # supervisor, so each child is asked to stop once, by run().
            child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                args,
                pass_fds=(fd,),
                process_group=0,
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
            self.children.append(child)

    def run(self, poll: float = 0.1) -> int:
        """Start the children and wait; return the exit status once every child has exited."""
        self.start()
        status, forwarded = 0, False
        while any(child.poll() is None for child in self.children):
            died = [child for child in self.children if child.returncode is not None]
            if not forwarded and (self.stop_requested is not None or died):
                if self.stop_requested is None:
                    status = exit_status(died[0].returncode)  # a child died on its own: fail loudly
                self._forward(self.stop_requested or signal.SIGTERM)
                forwarded = True
            time.sleep(poll)
        return status

    def _forward(self, signum: int) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)


def serve(host: str, port: int, processes: int) -> int:
    """Serve on host:port; one process replaces this one (exec), several run under a Supervisor."""
    if processes <= 1:
        sys.stdout.flush()
        args = daphne_command("-e", endpoint(host, port))
        os.execv(sys.executable, args)  # noqa: S606 - replaces this process: signals go straight to daphne
    supervisor = Supervisor(bind(host, port), processes)
    for signum in STOP_SIGNALS:
        signal.signal(signum, supervisor.request_stop)
    return supervisor.run()
