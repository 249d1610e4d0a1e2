"""The world a fault is injected into: the real agent process, a real Swarm, a real git remote
and the local registry, each reached by the agent through a :class:`FaultProxy`.

* the git remote is a bare repository served over HTTP by ``git http-backend``; the agent fetches
  and pushes its reverts through a proxy (a developer pushes straight to the repository);
* the images are named after a proxy in front of the local registry, so pre-flight, ``docker
  stack deploy --resolve-image`` and Swarm's own pulls all go through it;
* the agent talks to the Docker engine through a proxy on a unix socket;
* the agent's state directory is a small tmpfs (the "disk full" fault fills it);
* the agent's wall clock is libfaketime's, read from a file the clock faults step (its
  monotonic clock is left alone, as a real clock step leaves it).

Releases alternate between good image tags (1 and 2) and the bad tag 3 (its ``/health``
answers 500), for both services at once, so a stack left half on one release is visible.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from fault_support.githttp import GitHttpServer
from fault_support.proxy import FaultProxy, unix_path
from reconciler_support.e2e import Env, free_port, images_yaml, sh, stack_yaml, wait_for
from reconciler_support.gitrepo import Remote, git

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
STATE_FS_SIZE = "32m"
DOCKER_SOCKET = "/var/run/docker.sock"
TESTENV_DOCKER = Path(__file__).resolve().parents[2] / ".cache" / "testenv" / "docker"


@dataclass
class Release:
    sha: str
    tag: str
    good: bool


@dataclass
class Lab:
    env: Env
    registry: FaultProxy
    git_proxy: FaultProxy
    docker: FaultProxy
    git_server: GitHttpServer
    repo_name: str
    faketime_file: Path
    agent: subprocess.Popen[str] | None = None
    #: every release pushed, oldest first
    releases: list[Release] = field(default_factory=list)
    #: commits a test removed from the branch on purpose (a force-push)
    rewritten: set[str] = field(default_factory=set)
    good_tag: str = "1"

    # ---------------------------------------------------------------- images and releases

    def image(self, tag: str) -> str:
        """The test app's image ``tag``, named after the registry proxy."""
        ref = self.env.images[tag]
        return f"{self.registry.listen}/{ref.split('/', 1)[1]}"

    def release(self, good: bool) -> Release:
        tag = ("2" if self.good_tag == "1" else "1") if good else "3"
        image = self.image(tag)
        number = len(self.releases) + 2
        sha = self.env.remote.write(
            {
                # every release is a new desired state: a bad one is not one the agent knows
                "desired-state/e2e/stack.yml": self.stack(number),
                "desired-state/e2e/images.yaml": images_yaml(image, image),
            },
            f"Release {number}: {tag} ({'good' if good else 'bad'})",
        )
        release = Release(sha, tag, good)
        self.releases.append(release)
        return release

    def stack(self, number: int) -> str:
        extra = f"    environment: {{RELEASE: '{number}'}}\n"
        return stack_yaml(self.env.port, self.env.prefix, extra=extra)

    def settled_on(self, release: Release) -> None:
        """Remember which release is now the last good one."""
        if release.good and self.head_has(release.sha):
            self.good_tag = release.tag

    def head_has(self, sha: str) -> bool:
        remote = self.env.remote
        out = subprocess.run(
            ["git", "merge-base", "--is-ancestor", sha, "main"], cwd=remote.bare, check=False
        )
        return out.returncode == 0

    # ---------------------------------------------------------------- the agent

    def start_agent(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
        env.update(
            PYTHONUNBUFFERED="1",
            LD_PRELOAD=FAKETIME_LIB,
            FAKETIME_TIMESTAMP_FILE=str(self.faketime_file),
            FAKETIME_DONT_FAKE_MONOTONIC="1",
            FAKETIME_CACHE_DURATION="1",
        )
        with (self.env.root / "agent.log").open("a") as log:
            self.agent = subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "--config", str(self.env.config_path),
                 "run"],
                stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
            )  # fmt: skip

    def kill_agent(self, sig: int = signal.SIGKILL) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(sig)
            self.agent.wait(timeout=90)
        self.agent = None

    def agent_alive(self) -> bool:
        return self.agent is not None and self.agent.poll() is None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.env.settings['http_port']}{path}"

    def serving(self) -> bool:
        """The agent answers its status page and its metrics."""
        for path in ("/", "/metrics"):
            try:
                with urllib.request.urlopen(self.url(path), timeout=5) as response:  # noqa: S310
                    if response.status != 200:
                        return False
            except OSError:
                return False
        return True

    # ---------------------------------------------------------------- reading the agent's state

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.env.state_dir / "status.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def phase(self) -> str | None:
        """The phase of the pass in flight (the journal's, else the status's)."""
        with contextlib.suppress(OSError, ValueError):
            journal = json.loads((self.env.state_dir / "journal.json").read_text())
            return str(journal.get("phase"))
        return self.status().get("phase")

    def wait_phase(self, phase: str, timeout: float = 90) -> None:
        wait_for(f"the agent in phase {phase}", lambda: self.phase() == phase, timeout, 0.05)

    def settled(self) -> bool:
        """The agent is idle at the branch's head, Ready, with nothing in flight."""
        status = self.status()
        head = self.env.remote.head()
        ready = next((c for c in status.get("conditions", []) if c.get("type") == "Ready"), {})
        return bool(
            not (self.env.state_dir / "journal.json").exists()
            and (status.get("desired") or {}).get("sha") == head
            and (status.get("last_applied") or {}).get("sha")
            and ready.get("status") is True
            and status.get("phase") is None
        )

    def passed_since(self, moment: datetime) -> bool:
        """The agent finished a pass that started after ``moment`` (it has seen what changed; a
        pass that ends after it may have read the live stack before it). The history's newest
        entry ends with the newest pass, which took its ``duration_seconds`` (repeated passes
        share an entry)."""
        history = self.status().get("history") or []
        if not history:
            return False
        finished = datetime.fromisoformat(str(history[0]["finished_at"]).replace("Z", "+00:00"))
        return finished - timedelta(seconds=float(history[0]["duration_seconds"])) > moment

    # ---------------------------------------------------------------- the clock

    def step_clock(self, offset: str) -> None:
        """Step the agent's wall clock to ``offset`` from the real one (``+1h``, ``-1h``)."""
        self.faketime_file.write_text(f"{offset}\n")

    # ---------------------------------------------------------------- the engine

    def restart_engine(self) -> None:
        """Stop ``dockerd`` (as a host's restart would) and start it again."""
        pid = int(Path("/var/run/docker.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        os.kill(pid, signal.SIGTERM)
        wait_for("dockerd to stop", lambda: not Path(f"/proc/{pid}").exists(), 90, 0.2)
        # started the way testenv.sh starts it: a daemon of its own, not a child of the tests
        args = " ".join(shlex.quote(c.decode()) for c in cmdline)
        log = shlex.quote(str(TESTENV_DOCKER / "dockerd.log"))
        started = sh("sh", "-c", f"setsid nohup {args} >>{log} 2>&1 </dev/null & echo $!")
        new_pid = int(started.stdout.strip())
        pidfile = TESTENV_DOCKER / "dockerd.pid"
        if pidfile.exists() and pidfile.read_text().strip() == str(pid):
            pidfile.write_text(f"{new_pid}\n")  # testenv.sh down stops the engine it started
        wait_for("dockerd to answer", lambda: sh("docker", "info", check=False).returncode == 0,
                 90, 0.5)  # fmt: skip
        wait_for("the Swarm to answer", lambda: sh("docker", "node", "ls", check=False)
                 .returncode == 0, 90, 0.5)  # fmt: skip

    def close(self) -> None:
        self.kill_agent(signal.SIGTERM)
        for proxy in (self.registry, self.git_proxy, self.docker):
            proxy.stop()
        self.git_server.stop()
        self.env.cleanup()
        _unmount(self.env.state_dir.resolve())


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _state_fs() -> Path:
    """A small tmpfs for the agent's state directory, outside pytest's temporary folders (which
    pytest removes: a mount left there by a run that was killed breaks every later run); one
    left by a killed run is removed first."""
    for stale in Path("/tmp").glob("driftless-faults-*"):
        if not Path(f"/proc/{stale.name.rsplit('-', 1)[1]}").exists():
            _unmount(stale)
    path = Path(f"/tmp/driftless-faults-{os.getpid()}")
    path.mkdir(exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"size={STATE_FS_SIZE}", "tmpfs", str(path))
    return path


def open_lab(root: Path, stack: str, prefix: str, images: dict[str, str], base_image: str) -> Lab:
    """A lab with the stack deployed on release 1 and the agent running and settled."""
    git_root = root / "git"
    git_root.mkdir()
    remote = Remote(git_root)
    port = free_port()
    env = Env(stack=stack, prefix=prefix, root=root, remote=remote, images=images, port=port,
              base_image=base_image)  # fmt: skip
    env.state_dir.symlink_to(_state_fs())
    server = GitHttpServer(git_root)
    registry = os.environ.get("TEST_REGISTRY", "127.0.0.1:5000")
    lab = Lab(
        env=env,
        registry=FaultProxy(f"127.0.0.1:{free_port()}", registry).start(),
        git_proxy=FaultProxy(f"127.0.0.1:{free_port()}", f"127.0.0.1:{server.port}").start(),
        docker=FaultProxy(unix_path(root, "docker.sock"), DOCKER_SOCKET).start(),
        git_server=server,
        repo_name="remote.git",
        faketime_file=root / "faketime",
    )
    lab.step_clock("+0")
    image = lab.image("1")
    remote.write(
        {
            "desired-state/e2e/stack.yml": lab.stack(1),
            "desired-state/e2e/images.yaml": images_yaml(image, image),
        },
        "Deploy web and api at 1",
    )
    env.write_config(
        git={"url": f"http://{lab.git_proxy.listen}/remote.git", "branch": "main",
             "path": "desired-state/e2e"},
        docker={"host": f"unix://{lab.docker.listen}", "probe_labels": {"driftless.test": prefix}},
        sync={"interval": "1s", "retry_interval": "2s"},
        timeouts={"apply": "60s", "verify": "40s", "rollback": "60s"},
    )  # fmt: skip
    git(remote.work, "config", "pull.rebase", "true")
    lab.start_agent()
    wait_for("the first deploy", lab.settled, 180, 0.5)
    return lab
