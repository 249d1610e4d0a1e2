"""The docker CLI, for what only it does: ``docker stack deploy`` and ``docker stack config``, so
compose files mean exactly what Docker says they mean. A mixin of the Swarm adapter (it shares
its clock, masker, CLI path and engine address).

A deploy that failed for the engine's sake (``reconciler.dockerfaults``: the engine restarting, a
network Docker is still removing, ...) is tried again a few times, then is a ``DockerError``
(retried by the next pass, never blamed on the revision); any other failure is an ``ApplyError``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from reconciler.dockerfaults import transient
from reconciler.errors import ApplyError, DockerError, ValidationError
from reconciler.masking import Masker
from reconciler.ports import Clock

#: pauses between the tries of a deploy that failed for the engine's sake
DEPLOY_RETRIES = (2.0, 5.0)


class StackCli:
    _clock: Clock
    _masker: Masker
    _cli: str
    _host: str
    _stack_config: bool | None

    def _cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._host:
            env["DOCKER_HOST"] = self._host
        return env

    async def _cli_run(self, args: Sequence[str], time_limit: float) -> tuple[int, str, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._cli,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._cli_env(),
            )
        except FileNotFoundError as exc:
            raise DockerError(f"the docker CLI ({self._cli}) is not installed") from exc
        try:
            async with asyncio.timeout(time_limit):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return -1, "", f"timed out after {time_limit:.0f}s"
        return (
            proc.returncode or 0,
            self._masker.mask(out.decode(errors="replace")),
            self._masker.mask(err.decode(errors="replace")),
        )

    async def _has_stack_config(self) -> bool:
        """Whether this docker CLI has ``docker stack config`` (20.10 builds may lack it)."""
        if self._stack_config is None:
            try:
                code, out, err = await self._cli_run(["stack", "--help"], 30)
            except DockerError:
                code, out, err = 1, "", ""
            self._stack_config = code == 0 and any(
                line.split()[:1] == ["config"] for line in (out + err).splitlines()
            )
            if not self._stack_config:
                logger.warning(
                    "{} has no `docker stack config`: skipping Docker's own schema check",
                    self._cli,
                )
        return self._stack_config

    async def validate_compose(self, path: Path) -> None:
        if not await self._has_stack_config():
            return
        code, _, err = await self._cli_run(["stack", "config", "-c", str(path)], 60)
        if code != 0:
            text = err.strip().replace(str(path), "stack.yml")
            raise ValidationError(
                f"docker stack config rejects the rendered stack: {text}", problems=(text,)
            )

    async def deploy(self, stack: str, compose: Path, *, prune: bool, time_limit: float) -> str:
        """``docker stack deploy``; a failure that is the engine's trouble (``dockerfaults``) is
        tried again a few times, then a ``DockerError``; any other an ``ApplyError``."""
        args = ["stack", "deploy", "--with-registry-auth", "--resolve-image", "always"]
        if prune:
            args.append("--prune")
        args += ["-c", str(compose), stack]
        for attempt, pause in enumerate((*DEPLOY_RETRIES, None), start=1):
            code, out, err = await self._cli_run(args, time_limit)
            if code == 0:
                return (out + err).strip()
            last = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
            if not transient(out + err):
                raise ApplyError(f"docker stack deploy failed: {last}", detail=(out + err).strip())
            if pause is None:
                raise DockerError(
                    f"docker stack deploy failed {attempt} times: {last}",
                    detail=(out + err).strip(),
                )
            logger.warning(
                "docker stack deploy: {} (the engine's trouble: again in {}s)", last, pause
            )
            await self._clock.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover
