"""What the platform end-to-end tests drive: the real stack file, a git remote, the reconciler.

Nothing here is a mock. The production stack (`desired-state/production/stack.yml` on the shared
`desired-state/base/stack.yml`) is deployed as committed; what differs on this machine is only what
`images.yaml` and the reconciler's render variables change: local image names (stand-ins built from
Debian packages, see images/local/), published port numbers and 0 replicas for the four services
that have no image here (Grafana, Loki, Alloy, cAdvisor), and `secrets.sops.yaml`, encrypted for
this run's own age key (the committed one is for the VM's).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from scripts.remove_stack import remove_stack

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "desired-state" / "production"
#: services whose upstream image has no Debian build: pointed at a placeholder, 0 replicas
UNAVAILABLE = ("grafana", "loki", "alloy", "cadvisor")
#: tracked folders the stack reads config files from (relative to the repository root)
STACK_SOURCES = ("desired-state/base", "desired-state/production", "nginx", "observability")
#: in a platform's work directory: the age key its reconciler decrypts with, and the stack's
#: secrets encrypted for it (prepare_stack writes both)
AGE_KEY = "age.key"
SEALED = "secrets.sops.yaml"


def run(*cmd: str | Path, check: bool = True, timeout: float = 600, **kw: Any) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------------------------------- images
@dataclass(frozen=True)
class Images:
    registry: str
    api_v1: str
    api_v2: str
    api_bad: str
    reconciler: str

    def local(self, api: str) -> dict[str, str]:
        """images.yaml for this machine: every service on a local image, the API on ``api``."""
        services = yaml.safe_load((PRODUCTION / "images.yaml").read_text())
        out = {name: f"{self.registry}/driftless/{name}:local" for name in services}
        for name in UNAVAILABLE:
            out[name] = f"{self.registry}/driftless/unavailable:local"
        out["api"] = out["migrate"] = api
        out["reconciler"] = self.reconciler
        return out


def build_images(registry: str) -> Images:
    """Build (cached layers: seconds when nothing changed) and push every image the stack needs."""
    build = ROOT / "scripts" / "build-images.sh"
    env = {**os.environ, "REGISTRY": registry}
    run(build, "stand-ins", env=env, timeout=1800)
    api = f"{registry}/driftless/api"
    run(build, "api", "e2e-v1", env=env, timeout=1200)
    run(build, "api", "e2e-v2", env=env, timeout=1200)
    run(
        build, "app", "e2e", env=env, timeout=1200
    )  # the reconciler image, for the optional service
    bad = f"{api}:e2e-bad"
    run(
        "docker", "build", "-q", "--build-arg", f"API_IMAGE={api}:e2e-v2", "-t", bad,
        ROOT / "tests" / "e2e" / "platform" / "bad-api",
        env={**env, "DOCKER_BUILDKIT": "0"},
    )  # fmt: skip
    run("docker", "push", "-q", bad)
    return Images(
        registry, f"{api}:e2e-v1", f"{api}:e2e-v2", bad, f"{registry}/driftless/reconciler:e2e"
    )


# ------------------------------------------------------------------------------------ git remote
class DesiredRepo:
    """A bare git remote holding this repository's stack sources, and a clone to commit from."""

    def __init__(self, workdir: Path) -> None:
        self.bare = workdir / "remote.git"
        self.clone = workdir / "clone"
        self.images_file = self.clone / "desired-state" / "production" / "images.yaml"

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def git(self, *args: str) -> str:
        return run("git", "-C", self.clone, *args).strip()

    def init(self, images: dict[str, str]) -> str:
        run("git", "init", "-q", "--bare", "-b", "main", self.bare)
        run("git", "clone", "-q", self.url, self.clone)
        self.git("config", "user.name", "Platform tests")
        self.git("config", "user.email", "platform-tests@driftless.invalid")
        for rel in STACK_SOURCES:
            shutil.copytree(ROOT / rel, self.clone / rel)
        sealed = self.bare.parent / SEALED  # this machine's, if prepare_stack wrote it
        if sealed.exists():
            shutil.copy(sealed, self.clone / "desired-state" / "production" / SEALED)
        self.images_file.write_text(self._images_text(images))
        self.git("add", "-A")
        self.git("commit", "-qm", "Deploy the platform with local images")
        self.git("push", "-q", "origin", "main")
        return self.head()

    def _images_text(self, images: dict[str, str]) -> str:
        return "".join(f"{name}: {ref}\n" for name, ref in images.items())

    def bump(self, changes: dict[str, str], message: str) -> str:
        """Change image lines the way CI's tag-bump pull request does, commit, push."""
        self.git("pull", "-q", "--rebase", "origin", "main")
        lines = self.images_file.read_text().splitlines()
        out = []
        for line in lines:
            name = line.split(":", 1)[0]
            out.append(f"{name}: {changes[name]}" if name in changes else line)
        self.images_file.write_text("\n".join(out) + "\n")
        self.git("commit", "-qam", message)
        self.git("push", "-q", "origin", "main")
        return self.head()

    def head(self) -> str:
        return run("git", "-C", self.bare, "rev-parse", "main").strip()

    def remote_subjects(self, n: int = 10) -> list[str]:
        out = run("git", "-C", self.bare, "log", f"-{n}", "--format=%s", "main")
        return out.splitlines()

    def remote_images(self) -> dict[str, str]:
        text = run("git", "-C", self.bare, "show", "main:desired-state/production/images.yaml")
        return dict(yaml.safe_load(text))


# ---------------------------------------------------------------------------------- the reconciler
def revision_sha(entry: dict[str, Any]) -> str:
    """The sha of a history or quarantine entry's revision (a RevisionInfo in status.json)."""
    rev = entry.get("revision") or {}
    return str(rev.get("sha", "")) if isinstance(rev, dict) else str(rev)


@dataclass
class Reconciler:
    """The agent as the systemd unit runs it: a host process with a config file."""

    workdir: Path
    stack: str
    repo: DesiredRepo
    variables: dict[str, str]
    probe_image: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.state_dir = self.workdir / "state"
        self.config = self.workdir / "reconciler.yaml"
        self.log_path = self.workdir / "reconciler.log"
        config = {
            "stack": self.stack,
            "environment": "production",
            "state_dir": str(self.state_dir),
            "git": {"url": self.repo.url, "branch": "main", "path": "desired-state/production"},
            "sync": {"interval": "3s", "jitter": "1s", "retry_interval": "3s", "prune": False},
            "timeouts": {"apply": "300s", "verify": "300s", "rollback": "300s"},
            "health": {"probe_image": self.probe_image},
            "analysis": {"prometheus_url": "http://prometheus:9090", "network": "analysis"},
            "render": {"variables": self.variables},
            "log": {"format": "json", "level": "INFO"},
            "http": {"bind": "127.0.0.1", "port": free_port()},
        }
        if (self.workdir / AGE_KEY).exists():  # written by prepare_stack
            config["render"]["sops_age_key_file"] = str(self.workdir / AGE_KEY)  # type: ignore[index]
        self.config.write_text(yaml.safe_dump(config))

    def start(self) -> None:
        reconciler = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "reconciler"
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(reconciler), "--config", str(self.config), "run"], stdout=log, stderr=log
            )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def status(self) -> dict[str, Any]:
        path = self.state_dir / "status.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def wait_applied(self, sha: str, timeout: float) -> dict[str, Any]:
        def applied() -> dict[str, Any] | None:
            self._assert_running()
            status = self.status()
            if (status.get("last_applied") or {}).get("sha") == sha and status.get("phase") is None:
                return status
            return None

        return wait_until(f"revision {sha[:12]} applied", applied, timeout)  # type: ignore[no-any-return]

    def wait_history(self, sha: str, result: str, timeout: float) -> dict[str, Any]:
        def entry() -> dict[str, Any] | None:
            self._assert_running()
            for item in self.status().get("history", []):
                if revision_sha(item) == sha and item.get("result") == result:
                    return item  # type: ignore[no-any-return]
            return None

        return wait_until(f"a {result} pass of {sha[:12]}", entry, timeout)  # type: ignore[no-any-return]

    def _assert_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the reconciler exited {self.proc.returncode}: {self.tail()}")

    def tail(self, n: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


# ------------------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    name: str
    https_port: int
    cacert: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def client(self, **kw: Any) -> httpx.Client:
        tls = ssl.create_default_context(cafile=str(self.cacert))
        return httpx.Client(base_url=self.url, verify=tls, timeout=10.0, **kw)

    def tasks(self, service: str) -> list[dict[str, Any]]:
        out = run(
            "docker", "service", "ps", f"{self.name}_{service}", "--no-trunc",
            "--filter", "desired-state=running", "--format", "{{json .}}",
        )  # fmt: skip
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def running_images(self, service: str) -> Counter[str]:
        """Image of each running task of the service (tag only, digest stripped)."""
        return Counter(
            t["Image"].split("@")[0]
            for t in self.tasks(service)
            if t["CurrentState"].startswith("Running")
        )

    def container_images(self, service: str) -> Counter[str]:
        """Image of every container of the service still alive, draining ones included (a task
        whose desired state is already shutdown keeps serving until its container exits)."""
        out = run(
            "docker", "ps", "--format", "{{.Image}}",
            "--filter", f"label=com.docker.swarm.service.name={self.name}_{service}",
        )  # fmt: skip
        return Counter(line.split("@")[0] for line in out.split())

    def container(self, service: str) -> str:
        out = run(
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.swarm.service.name={self.name}_{service}",
        )
        ids = out.split()
        assert ids, f"no running container of {self.name}_{service}"
        return ids[0]

    def remove(self, secrets_script: Path) -> None:
        remove_stack(self.name, volumes=True)
        run(secrets_script, "remove", self.name, check=False)


# ----------------------------------------------------------------------------------------- load
@dataclass
class LoadResult:
    sent: int
    failed: int
    failures: list[str]
    versions: Counter[str]
    duration: float
    #: (monotonic time the request was sent, image_tag) of every /version answer, to see when the
    #: new release took over
    timeline: list[tuple[float, str]]
    #: answers refused by a rate limit (HTTP 429: nginx's per-address ``limit_req`` or the API's
    #: own), counted apart: the load's pace, not the release, decides them (../shared/LAB.md)
    limited: int = 0
    #: failed requests by path (``/products?limit=5``, ``/version``)
    failed_paths: Counter[str] = field(default_factory=Counter)


class Load:
    """A bounded load generator: ``workers`` threads, each at most ``rate`` requests/s, through
    nginx over TLS, alternating a cached product listing and ``/version`` (the API names its
    version in no response header, so the ``/version`` answers say which release served).
    HTTP 429 counts as rate-limited, not failed. It stops by itself after ``max_seconds`` even if
    nobody stops it."""

    def __init__(self, stack: Stack, workers: int = 4, rate: float = 6.0, max_seconds: float = 600):
        self.stack, self.workers, self.rate, self.max_seconds = stack, workers, rate, max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.sent = 0
        self.failures: list[str] = []
        self.failed_paths: Counter[str] = Counter()
        self.limited = 0
        self.versions: Counter[str] = Counter()
        self.timeline: list[tuple[float, str]] = []
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def _worker(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        paths = ("/products?limit=5", "/version")
        i = 0
        with self.stack.client() as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                t0 = time.monotonic()
                path = paths[i % 2]
                i += 1
                self._record(t0, path, *self._request(client, path))
                time.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - t0)))

    @staticmethod
    def _request(client: httpx.Client, path: str) -> tuple[int, str, str]:
        """(HTTP status or 0, what went wrong, the image tag a /version answer names)."""
        try:
            r = client.get(path)
        except httpx.HTTPError as exc:
            return 0, f"{path}: {type(exc).__name__}: {exc}", ""
        ok = r.status_code == 200
        tag = r.json().get("image_tag", "") if ok and path == "/version" else ""
        return r.status_code, f"{path}: HTTP {r.status_code} {r.text[:200]}", tag

    def _record(self, t0: float, path: str, status: int, problem: str, tag: str) -> None:
        with self._lock:
            self.sent += 1
            if status == 429:
                self.limited += 1
            elif status != 200:
                self.failures.append(problem)
                self.failed_paths[path] += 1
            if tag:
                self.versions[tag] += 1
                self.timeline.append((t0, tag))

    def start(self) -> Load:
        self._started = time.monotonic()
        for n in range(self.workers):
            t = threading.Thread(target=self._worker, name=f"load-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        with self._lock:
            return LoadResult(
                sent=self.sent,
                failed=len(self.failures),
                failures=list(self.failures[:20]),
                versions=Counter(self.versions),
                duration=time.monotonic() - self._started,
                timeline=list(self.timeline),
                limited=self.limited,
                failed_paths=Counter(self.failed_paths),
            )


# ---------------------------------------------------------------------------------- the platform
SECRETS_SCRIPT = ROOT / "scripts" / "make-secrets.sh"
#: node-exporter mounts it (backup metrics); on a VM scripts/bootstrap-vm.sh creates it
TEXTFILE_DIR = Path("/var/lib/prometheus/node-exporter")


def prepare_stack(name: str, workdir: Path) -> tuple[Stack, dict[str, str]]:
    """What the VM's bootstrap and ``make-secrets.sh sops`` do before a first deploy, for a stack
    NAME on this machine: the stack's secrets encrypted with SOPS for this run's own age key
    (WORKDIR/age.key; the values in WORKDIR/secrets, the file WORKDIR/secrets.sops.yaml, which
    :meth:`DesiredRepo.init` commits in place of the repository's, encrypted for the VM's key; a
    run that died half way removed first) and the host directory node-exporter mounts. Returns the
    stack and the render variables: free published ports, no replicas or nodes for UNAVAILABLE."""
    https_port = free_port()
    stack = Stack(name, https_port, workdir / "secrets" / "tls_fallback_cert")
    stack.remove(SECRETS_SCRIPT)
    env = {**os.environ, "DRIFTLESS_AGE_KEY_FILE": str(workdir / AGE_KEY)}
    env.pop("DRIFTLESS_AGE_RECIPIENTS", None)
    run(SECRETS_SCRIPT, "sops", workdir / "secrets", workdir / SEALED, env=env)
    TEXTFILE_DIR.mkdir(parents=True, exist_ok=True)
    variables = {
        "DRIFTLESS_HTTP_PORT": str(free_port()),
        "DRIFTLESS_HTTPS_PORT": str(https_port),
        "DRIFTLESS_GRAFANA_REPLICAS": "0",
        "DRIFTLESS_LOKI_REPLICAS": "0",
        "DRIFTLESS_ALLOY_OS": "none",
        "DRIFTLESS_CADVISOR_OS": "none",
    }
    return stack, variables


@dataclass
class Platform:
    images: Images
    repo: DesiredRepo
    reconciler: Reconciler
    stack: Stack
    secrets_dir: Path
    first_revision: str
    notes: dict[str, Any] = field(default_factory=dict)


@contextmanager
def load(stack: Stack, **kw: Any) -> Iterator[Load]:
    gen = Load(stack, **kw).start()
    try:
        yield gen
    finally:
        gen.stop()
