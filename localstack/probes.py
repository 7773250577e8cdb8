"""Readiness probes of the local stack's components: HTTP endpoints that answer 200, or a TCP
request/answer exchange (Redis PING)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass(frozen=True)
class Probe:
    """Ready when every URL in `urls` answers 200 or, with `tcp_port`, `send` gets `expect` back."""

    urls: tuple[str, ...] = ()
    tcp_port: int = 0
    send: str = ""
    expect: str = ""

    def ready(self) -> bool:
        """One probe: the TCP exchange on 127.0.0.1:`tcp_port` when set, else a GET of each URL
        in turn (1 s timeout each; no URL at all: True); a connection error is False."""
        if self.tcp_port:
            return tcp_ready(self.tcp_port, self.send.encode(), self.expect.encode())
        return all(http_ok(url) for url in self.urls)


def http_ok(url: str) -> bool:
    """True if a GET of `url` answers 200 within 1 s."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tcp_ready(port: int, probe: bytes, expect: bytes) -> bool:
    """True if 127.0.0.1:`port` answers `probe` with bytes starting with `expect` within 1 s."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(probe)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


def port_in_use(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
