# ruff: noqa
# This file is not imported: its source runs as `python3 -c` inside the short-lived probe
# container that the reconciler attaches to a stack network (see reconciler/adapters/swarm.py).
# A minimal HTTP forward proxy (GET/HEAD and CONNECT for https), standard library only.
from __future__ import annotations

import http.server
import select
import socket
import socketserver
import urllib.error
import urllib.request
from typing import Any

HOP = {"proxy-connection", "connection", "host", "proxy-authorization", "keep-alive"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        self.forward("GET")

    def do_HEAD(self) -> None:
        self.forward("HEAD")

    def forward(self, method: str) -> None:
        if self.path == "/_probe/ready":
            self.send_response(204)
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        request = urllib.request.Request(self.path, method=method, headers=headers)
        try:
            response: Any = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as exc:
            response = exc
        except Exception as exc:
            body = str(getattr(exc, "reason", exc)).encode()
            self.send_response(502)
            self.send_header("X-Driftless-Probe-Error", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        body = response.read()
        self.send_response(response.status if hasattr(response, "status") else response.code)
        for key, value in response.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=30)
        except Exception as exc:
            self.send_response(502)
            self.send_header("X-Driftless-Probe-Error", "1")
            self.end_headers()
            self.wfile.write(str(exc).encode())
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        sockets = [self.connection, upstream]
        while True:
            readable, _, broken = select.select(sockets, [], sockets, 60)
            if broken or not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)

    def log_message(self, *args: Any) -> None:
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("0.0.0.0", 8080), Handler).serve_forever()
