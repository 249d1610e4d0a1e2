"""The whole VM bootstrap, `--check` mode, in a throwaway container of a fresh Debian system.

Every step runs its real detection (dpkg, users, files, systemctl and docker where present) and
reports what it would do; the container's filesystem must come out unchanged (`docker diff`).
Ubuntu 24.04 itself cannot be pulled or built here, so the container is the local Debian base
image with one sudo user who has an SSH key, like a fresh cloud VM.
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


@pytest.fixture
def fresh_vm_image(base_image: str, unique_name: str) -> Iterator[str]:
    tag = f"{unique_name}-fresh-vm:test"
    dockerfile = (
        f"FROM {base_image}\n"
        "RUN useradd -m -s /bin/bash -G sudo alice && mkdir -p /home/alice/.ssh"
        " && echo 'ssh-ed25519 AAAAC3Nza alice@laptop' > /home/alice/.ssh/authorized_keys\n"
    )
    built = docker("build", "-q", "-t", tag, "--label", f"driftless.test={unique_name}", "-",
                   stdin=dockerfile)  # fmt: skip
    assert built.returncode == 0, built.stderr
    try:
        yield tag
    finally:
        docker("image", "rm", "-f", tag)


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
