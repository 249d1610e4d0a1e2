"""The tiny service the e2e tests deploy: /health and /version over HTTP on port 8080.

APP_MODE=bad makes /health answer 500 while the container itself keeps running (so Swarm
considers the task healthy and only the reconciler's HTTP check catches it)."""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "0")
MODE = os.environ.get("APP_MODE", "good")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            code = 500 if MODE == "bad" else 200
            body = {"status": "broken: database migration missing" if MODE == "bad" else "ok"}
        elif self.path == "/version":
            code, body = 200, {"version": VERSION, "mode": MODE}
        else:
            code, body = 404, {"error": "not found"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop at once: Swarm's updates wait for it
ThreadingHTTPServer(("", 8080), Handler).serve_forever()
