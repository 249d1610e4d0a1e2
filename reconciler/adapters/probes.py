"""Probe containers: short-lived containers that carry HTTP checks into stack networks (an HTTP
proxy, ``probe_proxy.py``, on the default bridge with its port published on 127.0.0.1 only, or,
for an agent that itself runs in a container, on the agent's attachable network and reached at
its address there; attached to each network a check asks for). Removed after the verify; any
left behind by a crash is removed at the next start (label ``driftless.probe=<stack>``)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loguru import logger

from reconciler.adapters.swarm import PROBE_LABEL, SwarmAdapter
from reconciler.errors import DockerError


async def remove_probes(swarm: SwarmAdapter, stack: str) -> int:
    """Remove the probe containers an earlier run left behind; how many there were."""

    def work() -> int:
        found = swarm.client.containers.list(all=True, filters={"label": f"{PROBE_LABEL}={stack}"})
        for container in found:
            container.remove(force=True)
        return len(found)

    return await swarm._call("removing probe containers", work)


class ProbeProxies:
    """Short-lived probe containers that carry HTTP checks into stack networks: one container
    per verify phase, on the default bridge with its port published on 127.0.0.1 only (or on
    ``network``, reached at its address there), attached to each network a check asks for.
    ``proxy_for(network)`` returns the proxy URL."""

    def __init__(
        self,
        swarm: SwarmAdapter,
        *,
        stack: str,
        image: str,
        labels: Mapping[str, str],
        network: str = "",
    ) -> None:
        self._swarm = swarm
        self._stack = stack
        self._image = image
        self._labels = dict(labels)
        self._home = network
        self._container: Any = None
        self._url: str | None = None
        self._networks: set[str] = set()
        self._lock = asyncio.Lock()

    async def proxy_for(self, network: str) -> str:
        async with self._lock:
            if not self._image:
                raise DockerError(
                    "a health check probes through a stack network but health.probe_image is "
                    "not configured"
                )
            if self._container is None:
                await self._start()
            if network not in self._networks:
                await self._swarm._call(
                    f"attaching the probe to {network}",
                    lambda: self._swarm.client.networks.get(network).connect(self._container),
                )
                self._networks.add(network)
            assert self._url is not None
            return self._url

    async def _start(self) -> None:
        source = (Path(__file__).parent / "probe_proxy.py").read_text()
        client = self._swarm.client

        home = self._home
        published = {} if home else {"ports": {"8080/tcp": ("127.0.0.1", None)}}

        def work() -> Any:
            container = client.containers.run(
                self._image,
                ["python3", "-c", source],
                detach=True,
                name=f"{self._stack}-probe-{secrets.token_hex(4)}",
                labels={PROBE_LABEL: self._stack, **self._labels},
                network=home or "bridge",
                **published,
            )
            container.reload()
            return container

        self._container = await self._swarm._call("starting the probe container", work)
        settings = self._container.attrs["NetworkSettings"]
        if home:
            host, port = settings["Networks"][home]["IPAddress"], "8080"
            self._networks.add(home)
        else:
            host, port = "127.0.0.1", settings["Ports"]["8080/tcp"][0]["HostPort"]
        self._url = f"http://{host}:{port}"
        for _ in range(100):
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    return
            except OSError:
                await asyncio.sleep(0.1)
        raise DockerError("the probe container did not start listening")

    async def close(self) -> None:
        async with self._lock:
            if self._container is not None:
                container, self._container = self._container, None
                try:
                    await self._swarm._call(
                        "removing the probe", lambda: container.remove(force=True)
                    )
                except DockerError as exc:
                    logger.warning("could not remove the probe container: {}", exc)
            self._networks.clear()
            self._url = None
