#!/usr/bin/env python3
"""Remove Swarm stacks completely: the one teardown that scripts/down.sh, scripts/testenv.sh and
the tests use.

    remove_stack.py STACK [STACK...] [--volumes] [--extra-label KEY=VALUE]... [--timeout SECONDS]

`docker stack rm` returns at once: the stack's containers are still stopping, and Docker removes
its networks asynchronously, trying each only once, so a network that a stopping container (or a
probe container) still holds stays behind, and a deploy right after fails with "network
<stack>_<net> not found". So: remove the containers that are not part of the stack but attach to
its networks (``--extra-label``), remove the stack, wait until its containers have stopped, remove
the ones that are left (finished job tasks keep theirs), then remove whatever of the stack is still
there (services, networks, configs, secrets) until nothing is, and (with ``--volumes``) its
volumes, which `stack rm` always keeps and which are released a moment after their containers.

Exits 1, naming what is left, when the stack is not gone within the timeout; volumes that are
still in use are only a warning. The secrets the reconciler makes from SOPS files are labelled as
the stack's and go with it; the external ones older versions of scripts/make-secrets.sh made are
not (``make-secrets.sh remove`` removes them). Standard library only: it runs with the system
python3.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

#: what a stack owns besides its volumes, in the order `docker stack rm` removes them
OWNED = ("container", "service", "network", "config", "secret")


def _docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=60
    ).stdout


def _ids(kind: str, label: str) -> list[str]:
    """Every ``kind`` (container, service, network, config, secret, volume) labelled ``label``:
    containers stopped or not."""
    every = ["-a"] if kind == "container" else []
    return _docker(kind, "ls", "-q", *every, "--filter", f"label={label}").split()


def _remove(kind: str, label: str) -> list[str]:
    """Remove every ``kind`` labelled ``label``; return the ids that were there (a removal can
    fail, e.g. a network still in use: the next call finds it again)."""
    ids = _ids(kind, label)
    if ids:
        _docker(kind, "rm", *(["-f", *ids] if kind == "container" else ids))
    return ids


def _wait(deadline: float, done: Callable[[], bool]) -> bool:
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
    return True


def start_removal(stack: str, extra_labels: Iterable[str] = ()) -> None:
    """Remove the containers labelled with any of ``extra_labels``, then the stack's services."""
    for label in extra_labels:
        _remove("container", label)
    _docker("stack", "rm", stack)


def finish_removal(stack: str, deadline: float, *, volumes: bool = False) -> dict[str, list[str]]:
    """Wait (until ``deadline``, a ``time.monotonic()``) for the removal ``start_removal`` began
    to finish, removing what `stack rm` left; return what is still there, by kind."""
    namespace = f"com.docker.stack.namespace={stack}"
    running = ("ps", "-q", "--filter", f"label={namespace}")
    _wait(deadline, lambda: not _docker(*running).split())
    _remove("container", namespace)  # and the exited ones go (or the running, after the deadline)
    _wait(deadline, lambda: not [kind for kind in OWNED if _remove(kind, namespace)])
    if volumes:
        _wait(deadline, lambda: not _remove("volume", namespace))
    kinds = (*OWNED, "volume") if volumes else OWNED
    left = {kind: _ids(kind, namespace) for kind in kinds}
    return {kind: ids for kind, ids in left.items() if ids}


def remove_stack(
    stack: str,
    *,
    extra_labels: tuple[str, ...] = (),
    volumes: bool = False,
    timeout: float = 90,
) -> dict[str, list[str]]:
    """Remove ``stack`` with its containers, networks, configs and secrets (and its volumes if
    ``volumes``); wait up to ``timeout`` seconds until they are gone and return what is left, by
    kind (empty: all gone). ``extra_labels`` (``key=value``) name containers that are not part of
    the stack but attach to its networks. Without a ``docker`` command, does nothing."""
    if shutil.which("docker") is None:
        return {}
    deadline = time.monotonic() + timeout
    start_removal(stack, extra_labels)
    return finish_removal(stack, deadline, volumes=volumes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="+", metavar="STACK")
    parser.add_argument("--volumes", action="store_true", help="remove the stacks' volumes too")
    parser.add_argument(
        "--extra-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="remove the containers with this label first (e.g. driftless.probe=STACK)",
    )
    parser.add_argument("--timeout", type=float, default=90, help="seconds to wait (90)")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None:
        return 0
    deadline = time.monotonic() + args.timeout
    for stack in args.stacks:  # all at once: their containers stop in parallel
        start_removal(stack, args.extra_label)
    status = 0
    for stack in args.stacks:
        left = finish_removal(stack, deadline, volumes=args.volumes)
        what = "; ".join(f"{kind}s {' '.join(ids)}" for kind, ids in left.items())
        if left.keys() - {"volume"}:
            print(
                f"error: {stack} is still there after {args.timeout:g} s: {what}", file=sys.stderr
            )
            status = 1
        elif left:
            print(f"warning: volumes of {stack} are still in use: {what}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
