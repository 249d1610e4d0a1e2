"""The production ``nginx/nginx.conf``, unchanged but for what only exists in the Swarm, run by
Debian's nginx on free loopback ports.

What is swapped, each replacement checked so that an edit of nginx.conf cannot leave this test
running something else: the listen ports (80, 443, 8080 → free loopback ports), the TLS
certificate (a fresh self-signed one), the monitoring htpasswd (an ``openssl passwd -apr1``
entry, as ``scripts/make-secrets.sh`` writes it), the reconciler upstream (``host.docker.internal``,
an ``extra_hosts`` entry in the stack → the test agent's loopback port), the geo file (the
repository's), the pid file, the logs and the temporary directories (the test's own directory),
and the worker user (root here; the image's ``nginx`` user does not exist on the host).
"""

from __future__ import annotations

import base64
import http.client
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from web_support.agent import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "nginx" / "nginx.conf"


def _swap(text: str, old: str, new: str, *, count: int | None = 1) -> str:
    found = text.count(old)
    if found == 0 or (count is not None and found != count):
        raise AssertionError(
            f"nginx/nginx.conf changed: expected {count or 'some'} of {old!r}, found {found}; "
            "update tests/web_support/edge.py"
        )
    return text.replace(old, new)


def loopback_conf(
    workdir: Path,
    *,
    ports: dict[str, int],
    reconciler: str,
    htpasswd: Path,
    cert: Path,
    key: Path,
) -> str:
    """nginx.conf with the Swarm-only parts swapped for loopback ones (see the module doc)."""
    text = NGINX_CONF.read_text()
    text = _swap(text, "user nginx;", "user root;")
    text = _swap(text, "pid /tmp/nginx.pid;", f"pid {workdir}/nginx.pid;")
    text = _swap(text, "error_log /dev/stderr warn;", f"error_log {workdir}/error.log info;")
    text = _swap(text, "access_log /dev/stdout json;", f"access_log {workdir}/access.log json;")
    text = _swap(
        text,
        "include /etc/nginx/geo-country.conf;",
        f"include {ROOT / 'nginx' / 'geo-country.conf'};",
    )
    text = _swap(
        text,
        "listen 80 default_server;",
        f"listen 127.0.0.1:{ports['http']} default_server;",
    )
    text = _swap(
        text,
        "listen 443 ssl http2 default_server;",
        f"listen 127.0.0.1:{ports['https']} ssl http2 default_server;",
    )
    text = _swap(text, "listen 8080;", f"listen 127.0.0.1:{ports['status']};")
    text = _swap(text, "/etc/nginx/tls/fullchain.pem", str(cert))
    text = _swap(text, "/etc/nginx/tls/privkey.pem", str(key))
    text = _swap(text, "/run/secrets/monitoring_htpasswd", str(htpasswd), count=None)
    text = _swap(text, "server host.docker.internal:9480;", f"server {reconciler};")
    temp = "".join(
        f"  {kind}_temp_path {workdir}/tmp/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return _swap(text, "http {\n", "http {\n" + temp)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Edge:
    """A running production nginx; ``request()`` speaks HTTPS to it without following
    redirects (so a test sees the 301/303 a browser would follow)."""

    workdir: Path
    ports: dict[str, int]
    user: str
    password: str
    proc: subprocess.Popen[bytes]
    _log: Any = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: tuple[str, str] | None = None,
    ) -> Response:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the test's own self-signed certificate
        conn = http.client.HTTPSConnection("127.0.0.1", self.ports["https"], context=context)
        sent = dict(headers or {})
        if auth is not None:
            pair = f"{auth[0]}:{auth[1]}".encode()
            sent["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    @property
    def login(self) -> tuple[str, str]:
        return self.user, self.password

    def access_lines(self) -> list[str]:
        path = self.workdir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGQUIT, 10)  # nginx's graceful stop
        if self._log is not None:
            self._log.close()


def start_edge(workdir: Path, *, reconciler: str, password: str, user: str = "admin") -> Edge:
    """Start the production nginx in WORKDIR with its reconciler upstream at RECONCILER
    (``host:port``) and basic auth USER/PASSWORD for the monitoring locations."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if nginx is None:
        raise AssertionError("nginx is not installed: run scripts/deps.sh")
    (workdir / "tmp").mkdir(parents=True, exist_ok=True)
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    hashed = subprocess.run(
        ["openssl", "passwd", "-apr1", "-stdin"],
        input=password,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    htpasswd = workdir / "htpasswd"
    htpasswd.write_text(f"{user}:{hashed}\n")
    ports = {"http": free_port(), "https": free_port(), "status": free_port()}
    conf = workdir / "nginx.conf"
    conf.write_text(
        loopback_conf(
            workdir, ports=ports, reconciler=reconciler, htpasswd=htpasswd, cert=cert, key=key
        )
    )
    test = subprocess.run([nginx, "-t", "-q", "-c", str(conf)], capture_output=True, text=True)
    if test.returncode != 0:
        raise AssertionError(f"nginx -t refused the production nginx.conf:\n{test.stderr}")
    log = (workdir / "nginx.out").open("ab")
    proc = subprocess.Popen(
        [nginx, "-c", str(conf), "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
    )
    edge = Edge(workdir, ports, user, password, proc, log)
    deadline = time.monotonic() + 15
    health = f"http://127.0.0.1:{ports['status']}/nginx-health"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            edge.stop()
            raise AssertionError(f"nginx exited: {edge.error_log()[-2000:]}")
        try:
            with urllib.request.urlopen(health, timeout=2) as resp:
                if resp.status == 200:
                    return edge
        except OSError:
            time.sleep(0.1)
    edge.stop()
    raise AssertionError(f"nginx did not answer on {health}: {edge.error_log()[-2000:]}")


def links(html: str) -> dict[str, list[str]]:
    """Every URL the page refers to, by attribute: href, src, action, formaction and data-api
    (the page's script posts to data-api)."""
    attributes = ("href", "src", "action", "formaction", "data-api")
    found: dict[str, list[str]] = {a: [] for a in attributes}

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if name in found and value is not None:
                    found[name].append(value)

    Parser().feed(html)
    return found
