"""A real ``api serve`` process: graceful SIGTERM drain, JSON logs with trace ids, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from apitest_helpers import PASSWORD, Served, free_port, wait_http

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _register_and_login(url: str, email: str) -> str:
    body = {"email": email, "password": PASSWORD, "name": "Log"}
    assert httpx.post(f"{url}/auth/register", json=body, timeout=30).status_code == 201
    login = httpx.post(f"{url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30)
    assert login.status_code == 200
    return str(login.json()["access_token"])


def _refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=0.5):
            return False
    except OSError:
        return True


def test_sigterm_finishes_the_in_flight_request(serve_api: Callable[..., Served]) -> None:
    # a login that takes about a second: argon2 with a high time cost
    served = serve_api({"ARGON2_TIME_COST": "24", "ARGON2_MEMORY_KIB": "65536"})
    token = _register_and_login(served.url, "drain@shop.example")
    assert token

    result: dict[str, httpx.Response | BaseException] = {}

    def slow_login() -> None:
        try:
            result["response"] = httpx.post(
                f"{served.url}/auth/login",
                json={"email": "drain@shop.example", "password": PASSWORD},
                timeout=30,
            )
        except BaseException as exc:  # reported by the assertion below
            result["response"] = exc

    in_flight = threading.Thread(target=slow_login)
    in_flight.start()
    time.sleep(0.3)  # the request is being served now
    served.process.send_signal(signal.SIGTERM)

    deadline = time.monotonic() + 5
    while not _refuses_connections(served.url):  # stops accepting at once...
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.02)
    assert in_flight.is_alive(), "the login finished before the listener closed; make it slower"

    in_flight.join(30)  # ... but finishes what it started
    response = result["response"]
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200
    assert response.json()["access_token"].startswith("dl_")
    # uvicorn re-raises the signal once drained, so the exit status says "stopped by SIGTERM"
    assert served.process.wait(30) in (0, -signal.SIGTERM)
    log = served.log.read_text()
    assert "Application shutdown complete" in log  # pools closed after the drain
    assert "Finished server process" in log
    assert "POST /auth/login 200" in log


def test_json_log_line_carries_the_clients_trace_id(serve_api: Callable[..., Served]) -> None:
    served = serve_api()
    token = _register_and_login(served.url, "logs@shop.example")
    headers = {
        "Authorization": f"Bearer {token}",
        "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
        "X-Request-ID": "req-from-client-1",
    }
    response = httpx.get(f"{served.url}/users/me", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.headers["x-trace-id"] == TRACE
    assert response.headers["x-request-id"] == "req-from-client-1"
    user_id = response.json()["id"]

    deadline = time.monotonic() + 5
    line = None
    while line is None and time.monotonic() < deadline:
        for raw in served.lines():
            record = json.loads(raw)  # every line is one JSON object
            if record.get("trace_id") == TRACE and record.get("route") == "/users/me":
                line = record
        time.sleep(0.05)
    assert line is not None, served.log.read_text()
    assert line["level"] == "INFO"
    assert line["message"] == "GET /users/me 200"
    assert line["request_id"] == "req-from-client-1"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["client_ip"] == "127.0.0.1"
    assert line["user_id"] == user_id
    assert line["ts"].endswith("+00:00")
    text = served.log.read_text()
    assert token not in text
    assert PASSWORD not in text


def test_sampled_access_log_keeps_errors(serve_api: Callable[..., Served]) -> None:
    served = serve_api({"LOG_ACCESS_SAMPLE_RATE": "0"})
    for _ in range(3):
        assert httpx.get(f"{served.url}/products", timeout=10).status_code == 200
    assert httpx.get(f"{served.url}/products/424242", timeout=10).status_code == 404
    time.sleep(0.2)
    messages = [json.loads(raw)["message"] for raw in served.lines()]
    assert "GET /products/{product_id} 404" in messages
    assert "GET /products 200" not in messages


def test_cli_rejects_bad_configuration(api_env: dict[str, str]) -> None:
    env = {**os.environ, **api_env, "PORT": "http", "DATABASE_URL": "mysql://x/y"}
    result = subprocess.run(
        [sys.executable, "-m", "api", "serve"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "PORT='http' is not an integer" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_serve_options_override_the_environment(api_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **api_env, "HOST": "192.0.2.1", "PORT": "1"}  # neither is usable here
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/live", process=process)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10).status_code == 200
    finally:
        process.terminate()
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"no exit within 30 s of SIGTERM:\n{log.read_text()}") from None
    assert code in (0, -signal.SIGTERM), log.read_text()


def test_cli_create_admin_from_a_password_file(
    serve_api: Callable[..., Served], api_env: dict[str, str], tmp_path: Path
) -> None:
    served = serve_api()
    secret = tmp_path / "admin-password"
    secret.write_text("a long admin password\n")
    env = {**os.environ, **api_env}
    command = [sys.executable, "-m", "api", "create-admin", "--email", "root@shop.example"]
    created = subprocess.run(
        [*command, "--password-file", str(secret)], env=env, capture_output=True, text=True
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert "a long admin password" not in created.stdout + created.stderr
    login = httpx.post(
        f"{served.url}/auth/login",
        json={"email": "root@shop.example", "password": "a long admin password"},
        timeout=10,
    )
    assert login.status_code == 200
    me = httpx.get(
        f"{served.url}/users/me",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=10,
    )
    assert me.json()["role"] == "admin"
    weak = subprocess.run(
        [*command, "--password", "short"], env=env, capture_output=True, text=True
    )
    assert weak.returncode == 1
    assert "password" in weak.stdout
