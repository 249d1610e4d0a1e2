"""Compose files merged by the docker CLI (``docker stack config -c base.yml -c stack.yml``): a
stack file that extends a base means exactly what ``docker stack deploy`` with both files would
deploy. The CLI needs no engine for it. It interpolates with the renderer's variables (the agent's
``render.variables``, the folder's ``.env``) and nothing else of the agent's environment: its
schema check needs the numbers (a published port, a replica count) that variables give."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from reconciler.desired_files import Merge


def cli_merge(cli: str = "docker") -> Merge:
    def merge(files: Sequence[Path], variables: Mapping[str, str]) -> str:
        args = [cli, "stack", "config"]
        for path in files:
            args += ["-c", str(path)]
        keep = ("PATH", "DOCKER_CONFIG")  # and a HOME, without which the CLI does not start
        env = dict(variables) | {k: os.environ[k] for k in keep if k in os.environ}
        env["HOME"] = os.environ.get("HOME", "/")
        try:
            done = subprocess.run(
                args, capture_output=True, text=True, timeout=60, check=False, env=env
            )
        except FileNotFoundError as exc:
            raise ValueError(f"the docker CLI ({cli}) is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise ValueError("docker stack config did not answer within 60 s") from exc
        if done.returncode != 0:
            text = done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}"
            for path in files:
                text = text.replace(str(path.parent) + "/", "")
            raise ValueError(f"docker stack config: {text.splitlines()[-1]}")
        return done.stdout

    return merge
