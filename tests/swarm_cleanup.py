"""Removing a test stack from the shared Swarm completely.

`docker stack rm` returns at once and tries each network only once: a network whose containers
are still stopping (or that a probe container still holds) stays behind for good. So: remove the
stack's extra containers, remove the stack, wait until its containers are gone, then remove the
networks that are left, and (when asked) its volumes, which `stack rm` always keeps.
"""

from __future__ import annotations

import shutil
import subprocess
import time


def _docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=60
    ).stdout


def _ids(kind: str, label: str) -> list[str]:
    return _docker(kind, "ls", "-q", "--filter", f"label={label}").split()


def remove_stack(
    stack: str,
    *,
    extra_labels: tuple[str, ...] = (),
    volumes: bool = False,
    timeout: float = 90,
) -> None:
    """Remove ``stack`` with its networks and containers (and its volumes if ``volumes``).
    ``extra_labels`` name containers that are not part of the stack but attach to its networks
    (``key=value``)."""
    if shutil.which("docker") is None:
        return
    namespace = f"com.docker.stack.namespace={stack}"
    for label in extra_labels:
        leftovers = _docker("ps", "-aq", "--filter", f"label={label}").split()
        if leftovers:
            _docker("rm", "-f", *leftovers)
    _docker("stack", "rm", stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _docker("ps", "-q", "--filter", f"label={namespace}").split():
            break
        time.sleep(0.5)
    exited = _docker("ps", "-aq", "--filter", f"label={namespace}").split()
    if exited:  # finished job tasks keep their containers
        _docker("rm", "-f", *exited)
    while time.monotonic() < deadline:
        networks = _ids("network", namespace)
        if not networks:
            break
        _docker("network", "rm", *networks)
        time.sleep(0.5)
    while volumes and time.monotonic() < deadline:  # released a moment after their containers
        left = _ids("volume", namespace)
        if not left:
            break
        _docker("volume", "rm", *left)
        time.sleep(0.5)
