"""Fixtures of the reconciler e2e tests: the real single-node Swarm, the local registry and the
test service's images (built once per session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from reconciler_support.e2e import Env, build_images, free_port, images_yaml, stack_yaml
from reconciler_support.gitrepo import Remote


@pytest.fixture(scope="session")
def app_images(registry: str, base_image: str) -> dict[str, str]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    return build_images(registry, base_image, prefix)


@pytest.fixture
def env(
    tmp_path: Path, unique_name: str, app_images: dict[str, str], base_image: str
) -> Iterator[Env]:
    """A git remote holding the two-service test stack on image tag 1, and a config for it."""
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    remote = Remote(tmp_path)
    port = free_port()
    world = Env(
        stack=unique_name,
        prefix=prefix,
        root=tmp_path,
        remote=remote,
        images=app_images,
        port=port,
        base_image=base_image,
    )
    remote.write(
        {
            "desired-state/e2e/stack.yml": stack_yaml(port, prefix),
            "desired-state/e2e/images.yaml": images_yaml(app_images["1"], app_images["1"]),
        },
        "Deploy web and api at 1",
    )
    world.write_config()
    try:
        yield world
    finally:
        world.cleanup()
        log = tmp_path / "agent.log"
        if log.exists():
            print(log.read_text()[-5000:])  # shown by pytest when the test failed
