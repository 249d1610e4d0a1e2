"""A proxy in front of a real server whose faults the test switches on and off.

It listens on a TCP port or a unix socket and forwards every connection to the real server
(the local registry, the git remote's HTTP server, the Docker engine's socket). Its mode says
what a client sees:

* ``up``: the real server;
* ``down``: nothing listens (connection refused), and open connections are cut;
* ``slow``: each new connection waits ``delay`` seconds before it is forwarded;
* ``error``: each request is answered ``500 Internal Server Error`` (an HTTP server in
  trouble) without reaching the real server.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 22\r\nConnection: close\r\n\r\nfault injected: error\n"
)


@dataclass
class FaultProxy:
    """``listen``: ``"127.0.0.1:PORT"`` or a unix socket path; ``target`` likewise."""

    listen: str
    target: str
    mode: str = "up"
    delay: float = 10.0
    _server: socket.socket | None = None
    _conns: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---------------------------------------------------------------- switching

    def start(self) -> FaultProxy:
        self._bind()
        return self

    def set(self, mode: str, delay: float | None = None) -> None:
        """Switch to ``mode`` (``up``, ``down``, ``slow``, ``error``)."""
        if delay is not None:
            self.delay = delay
        previous, self.mode = self.mode, mode
        if mode == "down":
            self._unbind()
            self._cut()
        elif previous == "down":
            self._bind()

    def stop(self) -> None:
        self.mode = "down"
        self._unbind()
        self._cut()

    # ---------------------------------------------------------------- plumbing

    @property
    def _unix(self) -> bool:
        return not _is_tcp(self.listen)

    def _bind(self) -> None:
        if self._server is not None:
            return
        if self._unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(self.listen)
        else:
            host, port = self.listen.rsplit(":", 1)
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((host, int(port)))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _unbind(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        if self._unix:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.listen)

    def _cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode == "error":
            with contextlib.suppress(OSError):
                client.recv(65536)
                client.sendall(_ERROR)
            client.close()
            return
        try:
            upstream = _connect(self.target)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns.update((client, upstream))
        try:
            _pump(client, upstream)
        finally:
            with self._lock:
                self._conns.discard(client)
                self._conns.discard(upstream)
            client.close()
            upstream.close()


def _is_tcp(address: str) -> bool:
    return ":" in address and not address.startswith("/")


def _connect(address: str) -> socket.socket:
    if _is_tcp(address):
        host, port = address.rsplit(":", 1)
        return socket.create_connection((host, int(port)), timeout=10)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def _pump(a: socket.socket, b: socket.socket) -> None:
    a.settimeout(None)
    b.settimeout(None)
    peers = {a: b, b: a}
    while True:
        try:
            readable, _, _ = select.select([a, b], [], [], 1.0)
        except (OSError, ValueError):
            return
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                peers[sock].sendall(data)
            except OSError:
                return


def unix_path(root: Path, name: str) -> str:
    """A unix socket path short enough for the kernel's 108-byte limit."""
    path = root / name
    return str(path) if len(str(path)) < 100 else f"/tmp/{name}-{os.getpid()}"
