"""A monitoring lab on loopback: the real exporters and Nginx from Debian 12's packages,
Alertmanager 0.28.1 and Prometheus 2.53 from Debian 13's (see obs_support.tools), and the
project's own API and reconciler when they are installed, all started as child processes on free
ports and scraped by a Prometheus whose configuration is the production prometheus.yml with only
the service discovery swapped for loopback addresses.

Used by tests/integration/observability and bench/observability. Everything it starts is a child
process of the caller, stopped by `close()`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from obs_support import alertmanager, files, tools


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class HttpError(Exception):
    """A non-2xx answer, with its body read (the connection is closed)."""

    def __init__(self, url: str, code: int, body: bytes) -> None:
        super().__init__(f"{url}: HTTP {code}")
        self.code = code
        self.body = body


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback http only)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        with exc:
            raise HttpError(url, exc.code, exc.read()) from None


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s" + (f": {last}" if last else ""))


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class WebhookSink:
    """A loopback HTTP server that records every POST (stands in for Slack's and Discord's
    webhook endpoints; the requests are the ones Alertmanager really sends)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with contextlib.suppress(ValueError):
                    sink.requests.append((self.path, json.loads(body)))
                self.send_response(204 if "discord" in self.path else 200)
                self.end_headers()
                if "discord" not in self.path:
                    self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Lab:
    workdir: Path
    pg_url: str  # superuser URL of the test PostgreSQL (exporter connects with it)
    redis_url: str
    procs: list[Proc] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    targets: dict[str, list[str]] = field(default_factory=dict)
    sink: WebhookSink | None = None
    nginx_access_log: Path | None = None
    backups: dict[str, Any] = field(default_factory=dict)  # what run_backups() left
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    api: Any = None  # obs_support.traffic.ApiLab once the API runs

    def webhook_sink(self) -> WebhookSink:
        """The lab's one webhook sink (Slack, Discord and generic webhooks post here)."""
        if self.sink is None:
            self.sink = WebhookSink()
        return self.sink

    def on_close(self, cleanup: Callable[[], None]) -> None:
        """Run CLEANUP when the lab closes, after its processes have stopped."""
        self.cleanups.append(cleanup)

    # ------------------------------------------------------------ processes
    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        popen = subprocess.Popen(
            argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.workdir,
            start_new_session=True,
        )
        handle.close()
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def wait_http(self, proc: Proc, url: str, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited: {proc.tail()}")
            http_get(url, timeout=2)
            return True

        wait_until(f"{proc.name} ({url})", ready, timeout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=5)
        self.procs.clear()
        if self.sink:
            self.sink.close()
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()

    # ------------------------------------------------------------ backups
    def run_backups(self) -> Path:
        """scripts/backup.sh as driftless-backup.service runs it, writing its driftless_backup_*
        metrics into a textfile directory (returned) for the node exporter: a good PostgreSQL
        backup of the lab's database, and a Grafana backup that fails (no Grafana runs here)."""
        textfile = self.workdir / "textfile"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUP_")}
        pg_bin = os.environ.get("TEST_PG_BIN")
        if pg_bin:  # pg_dump of the test server's version
            env["PATH"] = f"{pg_bin}:{env['PATH']}"
        env.update(
            BACKUP_CONFIG="/nonexistent",
            BACKUP_DIR=str(self.workdir / "backups"),
            BACKUP_TEXTFILE_DIR=str(textfile),
        )
        script = str(files.ROOT / "scripts" / "backup.sh")
        good = subprocess.run(
            [script, "postgres", "--url", self.pg_url, "--no-upload"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if good.returncode != 0:
            raise RuntimeError(f"backup.sh postgres failed: {good.stderr}")
        missing = self.workdir / "no-grafana-here"
        bad = subprocess.run(
            [script, "grafana", "--grafana-data", str(missing), "--no-upload"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if bad.returncode != 1:
            raise RuntimeError(f"backup.sh grafana should fail here: {bad.returncode} {bad.stderr}")
        (dump,) = (self.workdir / "backups" / "postgres").glob("*.dump")
        self.backups = {"textfile": textfile, "postgres": dump}
        return textfile

    # ------------------------------------------------------------ exporters
    def start_exporters(self) -> None:
        p = self.ports
        p["node"] = free_port()
        textfile = self.run_backups()
        proc = self.start(
            "node-exporter",
            [
                _binary("prometheus-node-exporter"),
                f"--web.listen-address=127.0.0.1:{p['node']}",
                f"--collector.textfile.directory={textfile}",
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['node']}/metrics")
        self.targets["node-exporter"] = [f"127.0.0.1:{p['node']}"]

        p["postgres-exporter"] = free_port()
        dsn = self.pg_url + ("&" if "?" in self.pg_url else "?") + "sslmode=disable"
        proc = self.start(
            "postgres-exporter",
            [
                _binary("prometheus-postgres-exporter"),
                f"--web.listen-address=127.0.0.1:{p['postgres-exporter']}",
            ],
            env={"DATA_SOURCE_NAME": dsn},
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['postgres-exporter']}/metrics")
        self.targets["postgres-exporter"] = [f"127.0.0.1:{p['postgres-exporter']}"]

        p["redis-exporter"] = free_port()
        proc = self.start(
            "redis-exporter",
            [
                _binary("prometheus-redis-exporter"),
                f"-redis.addr={self.redis_url}",
                f"-web.listen-address=127.0.0.1:{p['redis-exporter']}",
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['redis-exporter']}/metrics")
        self.targets["redis-exporter"] = [f"127.0.0.1:{p['redis-exporter']}"]

    def start_nginx(self, upstreams: list[str]) -> None:
        """Nginx with stub_status, the production JSON access log format, a TLS listener with a
        fresh self-signed certificate (probed by the blackbox exporter), proxying to UPSTREAMS
        (the API replicas) when there are any."""
        p = self.ports
        p["nginx"], p["nginx-tls"], p["nginx-status"] = free_port(), free_port(), free_port()
        ngx = self.workdir / "nginx"
        (ngx / "tmp").mkdir(parents=True, exist_ok=True)
        cert, key = ngx / "cert.pem", ngx / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.nginx_access_log = ngx / "access.log"
        upstream = "".join(f"    server {u};\n" for u in upstreams)
        if upstreams:
            backend = "proxy_pass http://api; proxy_set_header X-Request-ID $request_id;"
        else:
            backend = 'default_type application/json; return 200 "{\\"status\\": \\"ok\\"}";'
        conf = f"""
worker_processes 1;
pid {ngx}/nginx.pid;
error_log {ngx}/error.log warn;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {ngx}/tmp/body;
  proxy_temp_path {ngx}/tmp/proxy;
  fastcgi_temp_path {ngx}/tmp/fastcgi;
  uwsgi_temp_path {ngx}/tmp/uwsgi;
  scgi_temp_path {ngx}/tmp/scgi;
  {_production_log_format()}
  access_log {self.nginx_access_log} json;
  {"upstream api {" + chr(10) + upstream + "  }" if upstreams else ""}
  server {{
    listen 127.0.0.1:{p["nginx"]};
    location / {{ {backend} }}
  }}
  server {{
    listen 127.0.0.1:{p["nginx-tls"]} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{ {backend} }}
  }}
  server {{
    listen 127.0.0.1:{p["nginx-status"]};
    access_log off;
    location = /stub_status {{ stub_status; }}
  }}
}}
"""
        (ngx / "nginx.conf").write_text(conf)
        proc = self.start(
            "nginx",
            [
                _binary("nginx"),
                "-c",
                str(ngx / "nginx.conf"),
                "-g",
                "daemon off;",
                "-e",
                str(ngx / "error.log"),
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['nginx-status']}/stub_status")

        p["nginx-exporter"] = free_port()
        proc = self.start(
            "nginx-exporter",
            [
                _binary("prometheus-nginx-exporter"),
                f"-nginx.scrape-uri=http://127.0.0.1:{p['nginx-status']}/stub_status",
                f"-web.listen-address=127.0.0.1:{p['nginx-exporter']}",
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['nginx-exporter']}/metrics")
        self.targets["nginx-exporter"] = [f"127.0.0.1:{p['nginx-exporter']}"]

        p["blackbox-exporter"] = free_port()
        proc = self.start(
            "blackbox-exporter",
            [
                _binary("prometheus-blackbox-exporter"),
                f"--config.file={files.BLACKBOX_CONFIG}",
                f"--web.listen-address=127.0.0.1:{p['blackbox-exporter']}",
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['blackbox-exporter']}/metrics")
        self.targets["blackbox-exporter"] = [f"127.0.0.1:{p['blackbox-exporter']}"]

    # ------------------------------------------------------------ Alertmanager
    def start_alertmanager(self, smarthost: str | None = None, fast_groups: bool = False) -> None:
        """Alertmanager 0.25 with the production routes, receivers and templates (see
        obs_support.alertmanager). Slack and Discord post to a local webhook sink; with SMARTHOST,
        e-mail goes to that SMTP server; FAST_GROUPS shortens group_wait/group_interval so a test
        sees notifications and their resolution in seconds."""
        sink = self.webhook_sink()
        p = self.ports
        p["alertmanager"] = free_port()
        secrets = {
            "alertmanager_slack_webhook_url": sink.url("/slack"),
            "alertmanager_discord_webhook_url": sink.url("/discord"),
            "alertmanager_smtp_password": "not-used-in-tests",
        }
        config = alertmanager.write_variant(
            self.workdir / "alertmanager", secrets, smarthost=smarthost, fast_groups=fast_groups
        )
        proc = self.start(
            "alertmanager",
            [
                tools.newest("alertmanager"),
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'alertmanager' / 'data'}",
                f"--web.listen-address=127.0.0.1:{p['alertmanager']}",
                "--cluster.listen-address=",
            ],
        )
        self.wait_http(proc, f"http://127.0.0.1:{p['alertmanager']}/-/ready")
        self.targets["alertmanager"] = [f"127.0.0.1:{p['alertmanager']}"]

    # ------------------------------------------------------------ Prometheus
    def prometheus_config(self, interval: str = "1s") -> dict[str, Any]:
        """The production configuration with loopback targets in place of Swarm DNS."""
        prod = files.load_yaml(files.PROMETHEUS_CONFIG)
        config = copy.deepcopy(prod)
        config["global"].update(
            {
                "scrape_interval": interval,
                "evaluation_interval": interval,
                "scrape_timeout": interval,
            }
        )
        config["rule_files"] = [str(p) for p in files.rule_files()]
        config["alerting"]["alertmanagers"] = [
            {"static_configs": [{"targets": self.targets.get("alertmanager", [])}]}
        ]
        jobs = []
        for job in config["scrape_configs"]:
            name = job["job_name"]
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            if name == "prometheus":
                job["static_configs"] = [{"targets": [f"127.0.0.1:{self.ports['prometheus']}"]}]
            elif name == "blackbox-https":
                if "blackbox-exporter" not in self.targets:
                    continue
                job["static_configs"] = [
                    {"targets": [f"https://127.0.0.1:{self.ports['nginx-tls']}/health/live"]}
                ]
                for rule in job["relabel_configs"]:
                    if rule.get("target_label") == "__address__":
                        rule["replacement"] = self.targets["blackbox-exporter"][0]
            elif name in self.targets:
                labels = {}
                for static in job.get("static_configs", []):
                    labels.update(static.get("labels", {}))
                job.pop("dns_sd_configs", None)
                job["static_configs"] = [{"targets": self.targets[name], "labels": labels}]
            else:
                continue  # no such service runs here (cAdvisor, Grafana, Loki, Alloy)
            jobs.append(job)
        config["scrape_configs"] = jobs
        return config

    def start_prometheus(self, interval: str = "1s", extra_args: list[str] | None = None) -> None:
        self.ports["prometheus"] = free_port()
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(self.prometheus_config(interval), sort_keys=False))
        proc = self.start(
            "prometheus",
            [
                tools.newest("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
                "--storage.tsdb.retention.time=30d",
                "--storage.tsdb.retention.size=1GB",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                *(extra_args or []),
            ],
        )
        self.wait_http(proc, f"{self.prometheus_url}/-/ready", timeout=60)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def prom_api(self, path: str, **params: str) -> Any:
        url = f"{self.prometheus_url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            body = http_get(url, timeout=30)
        except HttpError as exc:
            body = exc.body
        return json.loads(body)

    def wait_for_targets_up(self, jobs: list[str], timeout: float = 30.0) -> None:
        def all_up() -> bool:
            data = self.prom_api("targets")["data"]["activeTargets"]
            health = {}
            for t in data:
                health.setdefault(t["labels"]["job"], []).append(t["health"])
            missing = [j for j in jobs if not health.get(j) or set(health[j]) != {"up"}]
            if missing:
                raise RuntimeError(f"targets not up yet: {missing}")
            return True

        wait_until("every scrape target up", all_up, timeout)


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(f"{name} is not installed: run scripts/deps.sh")
    return path


def _production_log_format() -> str:
    """The `log_format json` directive of the production nginx.conf (so the test's access log
    lines have exactly the production fields), or an equivalent when the file is missing."""
    conf = files.ROOT / "nginx" / "nginx.conf"
    if conf.exists():
        m = re.search(r"log_format\s+json\s+escape=json.*?;", conf.read_text(), re.S)
        if m:
            text = m.group(0)
            # variables defined elsewhere in the production config (maps) become empty here
            for var, value in _NGINX_MAPPED.items():
                text = re.sub(rf"\${var}\b", value, text)
            return text
    return (
        'log_format json escape=json \'{"time":"$time_iso8601","request_id":"$request_id",'
        '"remote_addr":"$remote_addr","method":"$request_method","uri":"$request_uri",'
        '"status":$status,"request_time":$request_time}\';'
    )


# variables the production config defines with `map`, and what stands in for them here
_NGINX_MAPPED = {"req_id": "$request_id", "client_country": "$http_x_country_code"}


@contextlib.contextmanager
def lab(workdir: Path, pg_url: str, redis_url: str) -> Iterator[Lab]:
    the_lab = Lab(workdir, pg_url, redis_url)
    try:
        yield the_lab
    finally:
        the_lab.close()
