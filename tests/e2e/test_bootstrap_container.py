"""The whole VM bootstrap, `--check` mode, in a throwaway container of a fresh Debian system.

Every step runs its real detection (dpkg, users, files, systemctl and docker where present) and
reports what it would do; the container's filesystem must come out unchanged (`docker diff`).
Ubuntu 24.04 itself cannot be pulled or built here, so the container is the local Debian base
image with one sudo user who has an SSH key, like a fresh cloud VM.

The `users` and `firewall` steps also run for real (twice) in a container that has Debian's ufw,
its own network namespace (`--network none`) and CAP_NET_ADMIN: UFW's rules go into that
namespace's netfilter tables only, never the host's.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, check=False, timeout=300
    )


def _vm_image(tag: str, dockerfile: str, unique_name: str) -> Iterator[str]:
    """Build TAG from DOCKERFILE (labelled as this test's), yield it, remove it."""
    built = docker("build", "-q", "-t", tag, "--label", f"driftless.test={unique_name}", "-",
                   stdin=dockerfile)  # fmt: skip
    assert built.returncode == 0, built.stderr
    try:
        yield tag
    finally:
        docker("image", "rm", "-f", tag)


@pytest.fixture
def fresh_vm_image(base_image: str, unique_name: str) -> Iterator[str]:
    dockerfile = (
        f"FROM {base_image}\n"
        "RUN useradd -m -s /bin/bash -G sudo alice && mkdir -p /home/alice/.ssh"
        " && echo 'ssh-ed25519 AAAAC3Nza alice@laptop' > /home/alice/.ssh/authorized_keys\n"
    )
    yield from _vm_image(f"{unique_name}-fresh-vm:test", dockerfile, unique_name)


@pytest.fixture
def firewall_vm_image(base_image: str, unique_name: str) -> Iterator[str]:
    dockerfile = (
        f"FROM {base_image}\n"
        "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
        " --no-install-recommends ufw iptables procps >/dev/null"
        " && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
        "RUN groupadd docker\n"  # what the docker step's packages create
    )
    yield from _vm_image(f"{unique_name}-ufw-vm:test", dockerfile, unique_name)


def test_deploy_user_and_firewall_are_applied_and_a_second_run_changes_nothing(
    firewall_vm_image: str, unique_name: str
) -> None:
    steps = ["/src/scripts/bootstrap-vm.sh", "--only", "users,firewall", "--allow-any-os",
             "--swarm-peers", "10.9.0.0/24", "--deploy-authorized-keys", "/tmp/keys"]  # fmt: skip
    script = (
        "echo 'ssh-ed25519 AAAAC3Nzb ci@example' >/tmp/keys; "
        + " ".join(steps)
        + "; echo '--- second'; "
        + " ".join(steps)
        + "; echo '--- state'; "
        "getent shadow deploy | cut -d: -f2; id -nG deploy; "
        "stat -c '%a %U' /home/deploy/.ssh/authorized_keys; ufw status verbose; "
        "iptables -S ufw-user-input"
    )
    run = docker(
        "run", "--rm", "--label", f"driftless.test={unique_name}", "--network", "none",
        "--cap-add", "NET_ADMIN", "-v", f"{ROOT}:/src:ro", firewall_vm_image, "sh", "-ec", script,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    first, rest = run.stdout.split("--- second\n")
    second, state = rest.split("--- state\n")
    assert "changed: create user deploy (no password; SSH keys only)" in first
    assert "changed: enable UFW" in first
    assert "No changes: this machine already matches." in second, second
    lines = state.splitlines()
    assert lines[0] == "*", "deploy has no password that could ever match"
    assert "docker" in lines[1].split()
    assert lines[2] == "600 deploy"
    assert "Status: active" in state
    assert "Default: deny (incoming), allow (outgoing)" in state
    allowed = sorted(
        " ".join(line.split()[:2])
        for line in state.splitlines()
        if " IN " in line and "(v6)" not in line
    )
    assert allowed == [
        "172.18.0.1 9480/tcp",
        "22/tcp LIMIT",
        "2377/tcp ALLOW",
        "443/tcp ALLOW",
        "4789/udp ALLOW",
        "7946/tcp ALLOW",
        "7946/udp ALLOW",
        "80/tcp ALLOW",
    ], state
    # the rules are in the kernel's tables, not only in ufw's files
    assert "--dport 443 -j ACCEPT" in state
    assert "-s 10.9.0.0/24 -p tcp -m tcp --dport 2377 -j ACCEPT" in state


def test_check_mode_on_a_fresh_system_reports_every_step_and_changes_nothing(
    fresh_vm_image: str, unique_name: str
) -> None:
    name = f"{unique_name}-bootstrap"
    run = docker(
        "run", "--name", name, "--label", f"driftless.test={unique_name}", "--network", "none",
        "--tmpfs", "/tmp", "-v", f"{ROOT}:/src:ro", fresh_vm_image,
        "/src/scripts/bootstrap-vm.sh", "--check",
        "--repo-url", "git@github.com:acme/driftless.git",
    )  # fmt: skip
    try:
        assert run.returncode == 2, run.stdout + run.stderr
        out = run.stdout
        for expected in (
            "would change: install packages: gnupg git openssh-client ufw fail2ban",
            "would change: add Docker's apt key",
            "would change: create /etc/apt/sources.list.d/docker.sources",
            "would change: install packages: docker-ce docker-ce-cli containerd.io",
            "would change: create /etc/docker/daemon.json",
            "would change: create docker_gwbridge",
            "would change: create user deploy",
            "would change: create /etc/ssh/sshd_config.d/00-driftless.conf",
            "would change: firewall: deny incoming except SSH",
            "would change: create /etc/fail2ban/jail.d/driftless.local",
            "would change: create /etc/sysctl.d/60-driftless.conf",
            "would change: time zone UTC",
            "would change: install the project into /opt/driftless/src",
            "would change: install the reconciler into /opt/driftless/venv",
            "would change: generate the git deploy key",
            "would change: create /etc/systemd/system/reconciler.service",
            "would change: enable and start driftless-backup.timer",
        ):
            assert expected in out, f"missing: {expected}\n{out}"
        assert "warning: made for Ubuntu 24.04, this is debian-12" in out
        diff = docker("diff", name)
        assert diff.returncode == 0
        # the only entry allowed is the mount point Docker itself creates for the checkout
        changes = [line for line in diff.stdout.splitlines() if line != "A /src"]
        assert changes == [], f"--check changed the container:\n{diff.stdout}"
    finally:
        docker("rm", "-f", name)
