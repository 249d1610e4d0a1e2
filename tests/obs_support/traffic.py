"""Start the project's own services in the lab and send them real traffic."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from obs_support import lab as lab_module
from obs_support.lab import Lab, http_get
from scripts.remove_stack import remove_stack


def api_available() -> bool:
    return importlib.util.find_spec("api.cli") is not None


ADMIN_EMAIL = "admin@lab.example.org"
ADMIN_PASSWORD = "lab-admin-password-1"


@dataclass
class ApiLab:
    replicas: list[str]  # host:port of each `api serve`
    redis_port: int
    redis_dir: Path


def start_api(lab: Lab, replicas: int = 2) -> list[str]:
    """REPLICAS of the real `api serve` (as Swarm would run several tasks), on a fresh database
    of the test PostgreSQL and a Redis of the lab's own (so a test can stop it to produce real
    server errors). Migrated with `api migrate`, an administrator made with `api create-admin`.
    Returns their addresses; the lab's Prometheus scrapes each one as its own target."""
    if not api_available():
        return []
    api = str(Path(sys.executable).with_name("api"))
    database = f"obslab_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["psql", lab.pg_url, "-qAtc", f'CREATE DATABASE "{database}"'],
        check=True,
        capture_output=True,
        timeout=60,
    )
    lab.on_close(lambda: _drop_database(lab.pg_url, database))
    base, _, _ = lab.pg_url.rpartition("/")
    redis_port = lab_module.free_port()
    redis_dir = lab.workdir / "redis"
    redis_dir.mkdir()
    _start_redis(lab, redis_port, redis_dir)
    env = {
        "DATABASE_URL": f"{base}/{database}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "INFO",
        "MIGRATE_ON_START": "false",
        "APP_VERSION": "0.0.0-lab",
        "GIT_REVISION": "lab",
        "IMAGE_TAG": "lab",
        "REDIS_TIMEOUT_SECONDS": "0.3",
        # every request of the lab comes from 127.0.0.1: the per-address login limit would hide
        # the per-e-mail one, which the traffic exercises
        "LOGIN_LIMIT_PER_IP": "200",
    }
    full_env = {**os.environ, **env}
    for argv in ([api, "migrate"],):
        done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"api migrate failed: {done.stderr[-2000:]}")
    secret = lab.workdir / "admin-password"
    secret.write_text(ADMIN_PASSWORD + "\n")
    done = subprocess.run(
        [api, "create-admin", "--email", ADMIN_EMAIL, "--password-file", str(secret)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"api create-admin failed: {done.stderr[-2000:]}")
    addresses = []
    for i in range(replicas):
        port = lab_module.free_port()
        proc = lab.start(
            f"api-{i}", [api, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env
        )
        lab.wait_http(proc, f"http://127.0.0.1:{port}/health/ready", timeout=60)
        addresses.append(f"127.0.0.1:{port}")
    lab.targets["api"] = addresses
    lab.api = ApiLab(addresses, redis_port, redis_dir)
    return addresses


def _start_redis(lab: Lab, port: int, directory: Path) -> None:
    proc = lab.start(
        f"redis-{port}",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
    )
    lab_module.wait_until(
        "the lab's Redis",
        lambda: (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, timeout=5
            ).returncode
            == 0
            and proc.popen.poll() is None
        ),
        timeout=20,
    )


def _drop_database(pg_url: str, database: str) -> None:
    subprocess.run(
        ["psql", pg_url, "-qAtc", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
        capture_output=True,
        timeout=60,
    )


def reconciler_available() -> bool:
    return importlib.util.find_spec("reconciler.agent") is not None and _docker_swarm_active()


def _docker_swarm_active() -> bool:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "active"


def start_reconciler(lab: Lab, timeout: float = 120.0) -> None:
    """The real reconciler agent (`reconciler run`) keeping a one-service test stack equal to a
    bare git repository, with its HTTP server (and /metrics) on a loopback port. The stack and
    its service carry TEST_STACK_PREFIX and are removed when the lab closes."""
    if not reconciler_available():
        return
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    base_image = os.environ.get("TEST_BASE_IMAGE", "")
    if not base_image:
        raise RuntimeError("TEST_BASE_IMAGE is not set: run scripts/testenv.sh up")
    stack = f"{prefix}obs{uuid.uuid4().hex[:6]}"
    work = lab.workdir / "reconciler"
    repo_dir, bare = work / "src", work / "desired.git"
    env_dir = repo_dir / "desired-state" / "lab"
    env_dir.mkdir(parents=True)
    (env_dir / "stack.yml").write_text(
        f"""version: "3.8"
services:
  web:
    command: ["python3", "-m", "http.server", "8080"]
    labels:
      driftless.test: "{prefix}"
    deploy:
      replicas: 1
      labels:
        driftless.test: "{prefix}"
      update_config: {{order: start-first}}
      resources:
        limits: {{cpus: "0.10", memory: 64M}}
"""
    )
    (env_dir / "images.yaml").write_text(f"web: {base_image}\n")
    git = ["git", "-c", "user.name=lab", "-c", "user.email=lab@driftless.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo_dir)], check=True)
    subprocess.run([*git, "-C", str(repo_dir), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(repo_dir), "commit", "-qm", "lab stack"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(repo_dir), str(bare)], check=True)

    hook = work / "webhook-url"
    hook.write_text(lab.webhook_sink().url("/reconciler-webhook") + "\n")
    port = lab_module.free_port()
    lab.ports["reconciler"] = port
    config = work / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "stack": stack,
                "environment": "lab",
                "state_dir": str(work / "state"),
                "git": {
                    "url": f"file://{bare}",
                    "branch": "main",
                    "path": "desired-state/lab",
                    "push_reverts": False,
                },
                "sync": {"interval": "5s", "jitter": "0s", "retry_interval": "5s"},
                "timeouts": {"apply": "120s", "verify": "120s", "rollback": "60s"},
                "docker": {"preflight_images": False},
                "log": {"level": "INFO", "format": "json"},
                "http": {"bind": "127.0.0.1", "port": port},
                "notify": {"webhook_url_file": str(hook), "on_success": True, "retries": 0},
            }
        )
    )
    lab.on_close(lambda: remove_stack(stack, extra_labels=(f"driftless.probe={stack}",)))
    reconciler = Path(sys.executable).with_name("reconciler")
    proc = lab.start("reconciler", [str(reconciler), "--config", str(config), "run"])
    lab.wait_http(proc, f"http://127.0.0.1:{port}/metrics", timeout=30)

    def passed() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"the reconciler exited: {proc.tail()}")
        text = http_get(f"http://127.0.0.1:{port}/metrics").decode()
        return 'reconciler_passes_total{environment="lab",result="success"' in text.replace(
            f'stack="{stack}",', ""
        ) and not re.search(r'result="success",stack="[^"]+"} 0\.0', text)

    lab_module.wait_until("a successful reconciler pass", passed, timeout=timeout)
    lab.targets["reconciler"] = [f"127.0.0.1:{port}"]


def drive(lab: Lab) -> None:
    """Real requests: through Nginx to the API replicas on every route, as users would send them
    (registrations, logins that succeed and fail, products in several categories, countries),
    and real server errors while the API's Redis is stopped."""
    base = f"http://127.0.0.1:{lab.ports['nginx']}"
    for _ in range(10):
        http_get(f"{base}/health/live")
    api: ApiLab | None = lab.api
    if api is None:
        return
    client = Client(base)
    for path in ("/health/live", "/health/ready", "/version", "/openapi.json"):
        client.call("GET", path)
    for replica in api.replicas:  # /metrics is scraped directly, not through Nginx
        http_get(f"http://{replica}/metrics")
    admin = client.call("POST", "/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})[
        1
    ]["access_token"]
    categories = _categories(client, admin)
    tokens = _users(client)
    _products(client, tokens, categories)
    client.call("POST", "/auth/logout", token=tokens[0][0], expect=204)
    _client_errors(client)
    _password_guessing(client)
    # server errors: the API's Redis goes away for a moment
    server_errors(lab, api, client)


def _categories(client: Client, admin: str) -> list[int]:
    """Three categories created, read twice each, one renamed; a fourth created and deleted."""
    categories: list[int] = []
    for name in ("Books", "Garden", "Kitchen"):
        _, body = client.call(
            "POST",
            "/categories",
            {"name": f"{name} {uuid.uuid4().hex[:4]}"},
            token=admin,
            expect=201,
        )
        categories.append(body["id"])
    client.call("GET", "/categories")
    for cid in categories:
        client.call("GET", f"/categories/{cid}")
        client.call("GET", f"/categories/{cid}")  # the second read is a cache hit
    client.call("PUT", f"/categories/{categories[0]}", {"name": "Books and more"}, token=admin)
    _, spare = client.call(
        "POST", "/categories", {"name": f"Spare {uuid.uuid4().hex[:4]}"}, token=admin, expect=201
    )
    client.call("DELETE", f"/categories/{spare['id']}", token=admin, expect=204)
    return categories


def _users(client: Client) -> list[tuple[str, str]]:
    """A user registered and logged in from each of five countries: their tokens and countries."""
    countries = ["DE", "FR", "US", "BR", "JP"]
    tokens: list[tuple[str, str]] = []
    for i, country in enumerate(countries):
        email = f"user{i}-{uuid.uuid4().hex[:6]}@lab.example.org"
        password = f"password-{i}-lab"
        client.call(
            "POST",
            "/auth/register",
            {"email": email, "password": password, "name": f"User {i}"},
            country=country,
            expect=201,
        )
        _, token = client.call(
            "POST", "/auth/login", {"email": email, "password": password}, country=country
        )
        tokens.append((token["access_token"], country))
    return tokens


def _products(client: Client, tokens: list[tuple[str, str]], categories: list[int]) -> None:
    """Each user creates products; they are listed, read, one is updated and one deleted."""
    products: list[tuple[int, str]] = []
    for n, (token, country) in enumerate(tokens):
        client.call("GET", "/users/me", token=token, country=country)
        for cid in categories[n % 3 :] + categories[: n % 3][:1]:
            _, product = client.call(
                "POST",
                "/products",
                {"name": f"Item {n}-{cid}", "price_cents": 100 * (n + 1), "category_id": cid},
                token=token,
                country=country,
                expect=201,
            )
            products.append((product["id"], token))
    client.call("GET", "/products")
    client.call("GET", f"/products?category_id={categories[1]}")
    for pid, _ in products[:4]:
        client.call("GET", f"/products/{pid}")
        client.call("GET", f"/products/{pid}")
    pid, token = products[0]
    client.call(
        "PUT",
        f"/products/{pid}",
        {"name": "Renamed", "price_cents": 999, "category_id": categories[0]},
        token=token,
    )
    pid, token = products[-1]
    client.call("DELETE", f"/products/{pid}", token=token, expect=204)


def _client_errors(client: Client) -> None:
    """An unknown product, no token, an invalid body."""
    client.call("GET", "/products/999999", expect=404)
    client.call("POST", "/products", {"name": "x", "price_cents": 1, "category_id": 1}, expect=401)
    client.call("POST", "/auth/register", {"email": "not-an-email"}, expect=422)


def _password_guessing(client: Client) -> None:
    """15 failed logins over two accounts, then the per-e-mail limit answers 429."""
    victim = f"victim-{uuid.uuid4().hex[:6]}@lab.example.org"
    client.call(
        "POST",
        "/auth/register",
        {"email": victim, "password": "right-password", "name": "Victim"},
        expect=201,
    )
    for _ in range(10):
        client.call(
            "POST",
            "/auth/login",
            {"email": victim, "password": "wrong-guess"},
            expect=401,
            country="CN",
        )
    client.call(
        "POST",
        "/auth/login",
        {"email": victim, "password": "wrong-guess"},
        expect=429,
        country="CN",
    )
    for _ in range(5):
        client.call(
            "POST", "/auth/login", {"email": ADMIN_EMAIL, "password": "wrong-guess"}, expect=401
        )


def server_errors(lab: Lab, api: ApiLab, client: Client) -> None:
    (proc,) = [p for p in lab.procs if p.name == f"redis-{api.redis_port}"]
    proc.popen.terminate()
    proc.popen.wait(timeout=10)
    lab.procs.remove(proc)
    # reads degrade gracefully (no cache, no rate limit); readiness reports the outage as 503
    reads = [client.call("GET", "/products", expect=None)[0] for _ in range(3)]
    ready = [client.call("GET", "/health/ready", expect=None)[0] for _ in range(8)]
    _start_redis(lab, api.redis_port, api.redis_dir)
    assert set(ready) == {503}, f"/health/ready without Redis answered {ready}"
    assert set(reads) == {200}, f"/products without Redis answered {reads}"
    lab_module.wait_until(
        "the API ready again",
        lambda: all(_status(f"http://{r}/health/ready") == 200 for r in api.replicas),
        timeout=30,
    )


def _status(url: str) -> int:
    try:
        http_get(url, timeout=5)
    except lab_module.HttpError as exc:
        return exc.code
    return 200


class Client:
    """JSON over HTTP through Nginx, with the headers Nginx's clients would send."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        country: str | None = None,
        expect: int | None = 200,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if country:
            headers["X-Country-Code"] = country
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 (loopback)
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, raw = exc.code, exc.read()
        if expect is not None and status != expect:
            raise AssertionError(f"{method} {path}: {status} (expected {expect}): {raw[:300]!r}")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw


def wait_for_rules(lab: Lab) -> None:
    """Let Prometheus scrape twice after the traffic and evaluate the recording rules."""
    time.sleep(3)
    lab_module.wait_until(
        "node recording rules",
        lambda: bool(
            lab.prom_api("query", query="instance:node_cpu_utilisation:ratio_rate5m")["data"][
                "result"
            ]
        ),
        timeout=30,
    )
