"""The tiny service the e2e tests deploy, on port 8080 (``HOST``, ``PORT``); standard library only.

Routes: ``/health``, ``/version``, ``/metrics`` (Prometheus text format, ``metrics.py``) and two a
load generator can hit, ``/`` (instant) and ``/items`` (about 10 ms of "work").

APP_MODE=bad makes /health answer 500 while the container itself keeps running (so Swarm
considers the task healthy and only the reconciler's HTTP check catches it).

APP_FAULT (``faults.py``) makes a test build fail in the ways a canary analysis must catch: a wrong
``/version``, 500s under a path prefix, N times slower answers, a crash some time after start-up.
A malformed value stops the process at start-up with status 2.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from faults import Fault, parse_fault
from metrics import CONTENT_TYPE, Metrics

VERSION = os.environ.get("APP_VERSION", "0")
MODE = os.environ.get("APP_MODE", "good")
CRASH_STATUS = 3
SLOW_FLOOR_SECONDS = 0.05  # the least time a slowed request counts as having taken
ITEMS_WORK_SECONDS = 0.01
ITEMS = [{"id": n, "name": f"item {n}"} for n in range(1, 11)]
ROUTES = ("/", "/items", "/health", "/version", "/metrics")


def log(level: str, message: str) -> None:
    print(json.dumps({"level": level, "message": message}), file=sys.stderr, flush=True)


def answer(path: str, fault: Fault, metrics: Metrics) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET of ``path``."""
    prefix = fault.fails(path)
    if prefix is not None:
        body = {"error": "injected_fault", "detail": f"APP_FAULT errors={prefix}: fails on purpose"}
        return 500, json.dumps(body).encode(), "application/json"
    if path == "/metrics":
        return 200, metrics.render(), CONTENT_TYPE
    if path == "/health":
        code = 500 if MODE == "bad" else 200
        body = {"status": "broken: database migration missing" if MODE == "bad" else "ok"}
    elif path == "/version":
        code, body = 200, {"version": fault.version or VERSION, "mode": MODE}
    elif path == "/":
        code, body = 200, {"service": "reconciler-e2e-app", "routes": list(ROUTES)}
    elif path == "/items":
        time.sleep(ITEMS_WORK_SECONDS)
        code, body = 200, {"items": ITEMS}
    else:
        code, body = 404, {"error": "not found"}
    return code, json.dumps(body).encode(), "application/json"


def make_handler(fault: Fault, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            start = time.perf_counter()
            path = urlsplit(self.path).path
            code, data, content_type = answer(path, fault, metrics)
            if fault.slowdown > 1:
                took = time.perf_counter() - start
                time.sleep((fault.slowdown - 1) * max(took, SLOW_FLOOR_SECONDS))
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            route = path if path in ROUTES else "unmatched"  # labels stay bounded
            metrics.observe(route, code, time.perf_counter() - start)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def crash(after: float) -> None:
    log("ERROR", f"APP_FAULT crash-after={after:g}s: crashing on purpose, exit {CRASH_STATUS}")
    os._exit(CRASH_STATUS)


def main() -> None:
    try:
        fault = parse_fault(os.environ.get("APP_FAULT", ""))
    except ValueError as exc:
        log("ERROR", f"APP_FAULT={os.environ['APP_FAULT']!r}: {exc}")
        sys.exit(2)
    if fault != Fault():
        log("WARNING", f"APP_FAULT={os.environ['APP_FAULT']}: a test build failing on purpose")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop at once: Swarm's updates wait
    handler = make_handler(fault, Metrics(VERSION))
    address = (os.environ.get("HOST", ""), int(os.environ.get("PORT", "8080")))
    server = ThreadingHTTPServer(address, handler)
    if fault.crash_after is not None:
        timer = threading.Timer(fault.crash_after, crash, (fault.crash_after,))
        timer.daemon = True
        timer.start()
    server.serve_forever()


if __name__ == "__main__":
    main()
