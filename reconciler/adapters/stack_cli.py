"""The docker CLI, for what only it does: ``docker stack deploy`` and ``docker stack config``, so
compose files mean exactly what Docker says they mean. A mixin of the Swarm adapter (it shares
its clock, masker, CLI path and engine address).

A deploy that failed for the engine's or a registry's sake (``reconciler.faults``: the engine
restarting, a network Docker is still removing, a registry down while images are resolved, ...)
is tried again a few times when that trouble passes, then is a ``DockerError`` named after the
component (``DockerUnavailable``, ``RegistryUnavailable``; retried by the next pass, never blamed
on the revision); a failure that is the revision's is an ``ApplyError``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from loguru import logger

from reconciler.errors import ApplyError, DockerError, ValidationError
from reconciler.faults import docker_error, docker_fault
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
        """``docker stack deploy``; a failure that is the engine's or a registry's trouble
        (``faults``) is tried again a few times when it passes, then a ``DockerError`` named
        after the component; a failure that is the revision's an ``ApplyError``."""
        args = ["stack", "deploy", "--with-registry-auth", "--resolve-image", "always"]
        if prune:
            args.append("--prune")
        args += ["-c", str(compose), stack]
        for attempt, pause in enumerate((*DEPLOY_RETRIES, None), start=1):
            code, out, err = await self._cli_run(args, time_limit)
            if code == 0:
                return (out + err).strip()
            text = (out + err).strip()
            fault = docker_fault(text)
            if fault.reason is None:  # the revision's (or a registry refusing its images)
                last = fault.evidence or f"exit code {code}"
                raise ApplyError(f"docker stack deploy failed: {last}", detail=text)
            if pause is None or not fault.transient:
                tries = f" {attempt} times" if attempt > 1 else ""
                raise docker_error(f"docker stack deploy failed{tries}", text, fault)
            logger.warning(
                "docker stack deploy: {}: {} (again in {}s)", fault.words, fault.evidence, pause
            )
            await self._clock.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover
