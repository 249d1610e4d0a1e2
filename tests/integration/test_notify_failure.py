"""scripts/notify-failure.sh posts a failed unit to a chat webhook (a real local HTTP server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "notify-failure.sh"
SECRET = "T000/B000/very-secret-token"


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hook.received.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/services/{SECRET}"
    finally:
        server.shutdown()
        server.server_close()


def notify(unit: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    return subprocess.run(
        [str(SCRIPT), unit],
        env={**clean, "NOTIFY_CONFIG": "/nonexistent", **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_a_failed_unit_is_posted_for_slack_and_discord(webhook: str, tmp_path: Path) -> None:
    config = tmp_path / "notify.env"
    config.write_text(f'NOTIFY_WEBHOOK_URL="{webhook}"\n')
    result = notify("driftless-backup.service", NOTIFY_CONFIG=str(config))
    assert result.returncode == 0, result.stderr
    ((path, body),) = Hook.received
    assert path == f"/services/{SECRET}"
    assert "`driftless-backup.service` failed on" in body["text"]
    assert body["content"] == body["text"]
    assert SECRET not in result.stdout + result.stderr


def test_an_unreachable_webhook_fails_without_printing_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = notify("x.service", NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{port}/{SECRET}")
    assert result.returncode == 1
    assert "could not report x.service" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_without_a_webhook_it_only_logs() -> None:
    result = notify("x.service")
    assert result.returncode == 0
    assert "no NOTIFY_WEBHOOK_URL configured" in result.stderr
