"""Real git servers on loopback for the transport tests: OpenSSH's ``sshd`` serving a bare
repository to a deploy key, and Nginx with TLS and basic auth in front of ``git http-backend``
(through ``fcgiwrap``), the way GitHub, GitLab and Gitea serve git over SSH and HTTPS."""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
FCGIWRAP = shutil.which("fcgiwrap") or "/usr/sbin/fcgiwrap"


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {log.read_text()}")


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, so that stopping it ends its children too."""
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=out, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue
    # children that outlive their parent (fcgiwrap's workers) are in the same group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def ssh_keygen(path: Path, comment: str) -> str:
    """A fresh ed25519 key pair at ``path``; returns the public key line."""
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshServer:
    """``sshd`` on 127.0.0.1 that lets ``authorized`` keys log in as the current user, who owns
    the bare repositories. ``url(bare)`` is the ssh:// URL of a repository."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = self.root / "host_key"
        self.authorized = self.root / "authorized_keys"
        self.authorized.touch()
        self.log = self.root / "sshd.log"
        self.new_host_key()

    def new_host_key(self) -> None:
        """Give the server a new identity (what a man in the middle would present)."""
        self.host_public = ssh_keygen(self.host_key, "driftless-test-host")

    def authorize(self, public_key: str) -> None:
        with self.authorized.open("a") as f:
            f.write(public_key + "\n")

    def known_hosts_line(self) -> str:
        kind, key = self.host_public.split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {key}\n"

    def url(self, bare: Path) -> str:
        return f"ssh://{getpass.getuser()}@127.0.0.1:{self.port}{bare}"

    def start(self) -> None:
        # privilege separation directory that sshd insists on (absent until the service ran once)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.root / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized}\n"
            "AuthenticationMethods publickey\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "UsePAM no\n"
            # the test's temporary directories are not what StrictModes expects of a home
            "StrictModes no\n"
            "LogLevel VERBOSE\n"
        )
        self.proc = _spawn([SSHD, "-D", "-e", "-f", str(config)], self.log)
        _wait_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


@dataclass
class HttpsServer:
    """Nginx on 127.0.0.1 with a certificate from a private CA (``ca_file``), basic auth for
    ``user``/``token``, and ``git http-backend`` serving the repositories under ``project_root``
    (push is allowed to an authenticated user). ``url(bare)`` is the https:// URL."""

    root: Path
    project_root: Path
    user: str
    token: str
    port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "server.log"
        self.ca_file = self.root / "ca.pem"
        self._certificates()
        htpasswd = _run("openssl", "passwd", "-5", self.token).strip()
        (self.root / "htpasswd").write_text(f"{self.user}:{htpasswd}\n")

    def _certificates(self) -> None:
        d = self.root
        _run(
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d / "ca.key", "-out", self.ca_file, "-days", "2",
            "-subj", "/CN=Driftless test CA",
        )  # fmt: skip
        _run(
            "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d / "server.key", "-out", d / "server.csr", "-subj", "/CN=127.0.0.1",
        )  # fmt: skip
        (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        _run(
            "openssl", "x509", "-req", "-in", d / "server.csr", "-CA", self.ca_file,
            "-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "server.pem", "-days", "2",
            "-extfile", d / "san.ext",
        )  # fmt: skip

    def url(self, bare: Path) -> str:
        return f"https://127.0.0.1:{self.port}/{bare.relative_to(self.project_root)}"

    def start(self) -> None:
        d = self.root
        sock = d / "fcgiwrap.sock"
        for sub in ("body", "fastcgi", "proxy", "uwsgi", "scgi"):
            (d / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        conf = d / "nginx.conf"
        conf.write_text(f"""
user {getpass.getuser()};
worker_processes 1;
pid {d / "nginx.pid"};
error_log {self.log} info;
events {{ worker_connections 64; }}
http {{
  access_log {d / "access.log"};
  client_body_temp_path {d / "tmp/body"};
  fastcgi_temp_path {d / "tmp/fastcgi"};
  proxy_temp_path {d / "tmp/proxy"};
  uwsgi_temp_path {d / "tmp/uwsgi"};
  scgi_temp_path {d / "tmp/scgi"};
  server {{
    listen 127.0.0.1:{self.port} ssl;
    ssl_certificate {d / "server.pem"};
    ssl_certificate_key {d / "server.key"};
    client_max_body_size 0;
    location / {{
      auth_basic "git";
      auth_basic_user_file {d / "htpasswd"};
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT {self.project_root};
      fastcgi_param GIT_HTTP_EXPORT_ALL "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_param REMOTE_USER $remote_user;
      fastcgi_pass unix:{sock};
    }}
  }}
}}
""")
        fcgi = _spawn([FCGIWRAP, "-c", "2", "-s", f"unix:{sock}"], self.log)
        self.procs.append(fcgi)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if fcgi.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fcgiwrap did not start: {self.log.read_text()}")
            time.sleep(0.05)
        nginx = _spawn([NGINX, "-e", str(self.log), "-c", str(conf), "-g", "daemon off;"], self.log)
        self.procs.append(nginx)
        _wait_port(self.port, nginx, self.log)

    def stop(self) -> None:
        while self.procs:
            _stop(self.procs.pop())
