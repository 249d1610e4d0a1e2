"""What a failed Docker command means: the engine's trouble (retried) or the revision's."""

from __future__ import annotations

import pytest

from reconciler.dockerfaults import transient


@pytest.mark.parametrize(
    "text",
    [
        "failed to create service shop_api: Error response from daemon: network shop_backend "
        "not found",
        "Error response from daemon: rpc error: code = Unavailable desc = connection error",
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
        "daemon running?",
        "Error response from daemon: rpc error: code = DeadlineExceeded desc = context "
        "deadline exceeded",
        "Error response from daemon: The swarm does not have a leader.",
        "timed out after 300s",
    ],
)
def test_the_engines_trouble(text: str) -> None:
    assert transient(text)


@pytest.mark.parametrize(
    "text",
    [
        "services.api.deploy.replicas must be a integer",
        "image registry.test/shop/api:9 could not be accessed on a registry to record its digest",
        'invalid mount config for type "bind": bind source path does not exist: /srv/missing',
        'service nginx: undefined network "frontend"',
    ],
)
def test_the_revisions_fault(text: str) -> None:
    assert not transient(text)
