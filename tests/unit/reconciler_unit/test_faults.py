"""What a failure's text means (``reconciler.faults``): which component failed and whether it
passes by itself, read from the words Docker (CLI and Engine API) and git really print."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.errors import DockerError, GitError, Reason, StateError
from reconciler.faults import (
    Component,
    disk_error,
    docker_error,
    docker_fault,
    git_error,
    git_fault,
)

ENGINE, REGISTRY, GIT, REVISION = (
    Component.ENGINE,
    Component.REGISTRY,
    Component.GIT_REMOTE,
    Component.REVISION,
)


@dataclass(frozen=True)
class Case:
    text: str
    component: Component
    transient: bool
    status: int | None = None  # the Engine API's HTTP status (None: the docker CLI)
    registry: str = ""  # the request was about an image in this registry
    where: str = ""  # the registry named in the message
    evidence: str = ""  # a part of the line that decided


DOCKER = [
    # the engine's trouble, which passes
    Case(
        "failed to create service shop_api: Error response from daemon: network shop_backend "
        "not found",
        ENGINE,
        True,
    ),
    Case(
        "Error response from daemon: rpc error: code = Unavailable desc = connection error",
        ENGINE,
        True,
    ),
    Case(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
        "daemon running?",
        ENGINE,
        True,
    ),
    Case(
        'error during connect: Get "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/info": dial unix '
        "/var/run/docker.sock: connect: connection refused",
        ENGINE,
        True,
    ),
    Case(
        'error during connect: Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.41/services/create": EOF',
        ENGINE,
        True,
    ),
    Case(
        "Error response from daemon: rpc error: code = DeadlineExceeded desc = context "
        "deadline exceeded",
        ENGINE,
        True,
    ),
    Case("Error response from daemon: The swarm does not have a leader.", ENGINE, True),
    Case(
        "failed to update service shop_api: Error response from daemon: rpc error: code = "
        "Unknown desc = update out of sequence",
        ENGINE,
        True,
    ),
    Case("timed out after 300s", ENGINE, True),
    Case("unexpected EOF", ENGINE, True, status=500),
    Case(
        "Error while fetching server API version: ('Connection aborted.', "
        "FileNotFoundError(2, 'No such file or directory'))",
        ENGINE,
        True,
    ),
    # the engine's, but no retry soon will help (still not the revision's)
    Case(
        'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
        "connect this node to swarm and try again.",
        ENGINE,
        False,
        status=503,
    ),
    Case(
        "permission denied while trying to connect to the Docker daemon socket at "
        "unix:///var/run/docker.sock",
        ENGINE,
        False,
    ),
    Case("an Engine API error no rule knows", ENGINE, True, status=500),
    # a registry down, failing or slow
    Case(
        'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
        REGISTRY,
        True,
        status=500,
        where="127.0.0.1:5000",
    ),
    Case(
        "received unexpected HTTP status: 500 Internal Server Error",
        REGISTRY,
        True,
        status=500,
        registry="registry.example.org",
        where="registry.example.org",
    ),
    Case(
        "toomanyrequests: You have reached your pull rate limit. You may increase the limit by "
        "authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        REGISTRY,
        True,
        evidence="toomanyrequests",
    ),
    Case(
        'Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for '
        "connection (Client.Timeout exceeded while awaiting headers)",
        REGISTRY,
        True,
        where="registry-1.docker.io",
    ),
    Case(
        "error pulling image configuration: download failed after attempts=6: dial tcp: "
        "lookup production.cloudflare.docker.com: no such host",
        REGISTRY,
        True,
    ),
    Case(
        "error parsing HTTP 502 response body: invalid character '<' looking for beginning of "
        'value: "<html><body><h1>502 Bad Gateway</h1></body></html>"',
        REGISTRY,
        True,
    ),
    Case("503 Service Unavailable", REGISTRY, True),
    Case(
        'Get "https://127.0.0.1:5000/v2/": net/http: TLS handshake timeout',
        REGISTRY,
        True,
        where="127.0.0.1:5000",
    ),
    Case(
        "context deadline exceeded",
        REGISTRY,
        True,
        status=500,
        registry="127.0.0.1:5000",
        where="127.0.0.1:5000",
    ),
    # a registry that refuses access: a human, not a retry
    Case(
        "unauthorized: authentication required",
        REGISTRY,
        False,
        status=401,
        registry="registry.example.org",
        where="registry.example.org",
    ),
    Case("denied: requested access to the resource is denied", REGISTRY, False, status=403),
    Case(
        'Get "https://127.0.0.1:5000/v2/": x509: certificate signed by unknown authority',
        REGISTRY,
        False,
        where="127.0.0.1:5000",
    ),
    # the revision's fault
    Case(
        "manifest for 127.0.0.1:5000/shop/web:9 not found: manifest unknown: manifest unknown",
        REVISION,
        False,
        status=404,
        registry="127.0.0.1:5000",
    ),
    Case("services.api.deploy.replicas must be a integer", REVISION, False),
    Case(
        "image registry.test/shop/api:9 could not be accessed on a registry to record its digest",
        REVISION,
        False,
    ),
    Case(
        'invalid mount config for type "bind": bind source path does not exist: /srv/missing',
        REVISION,
        False,
    ),
    Case('service nginx: undefined network "frontend"', REVISION, False),
    Case(
        "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided",
        REVISION,
        False,
        status=400,
    ),
    Case("an Engine API error no rule knows", REVISION, False, status=400),
]


@pytest.mark.parametrize("case", DOCKER, ids=[c.text[:60] for c in DOCKER])
def test_docker_texts(case: Case) -> None:
    fault = docker_fault(case.text, status=case.status, registry=case.registry)
    assert (fault.component, fault.transient) == (case.component, case.transient)
    assert fault.where == case.where
    assert case.evidence in fault.evidence
    assert fault.evidence in case.text


GIT = [
    Case(
        "fatal: unable to access 'https://git.example.org/shop.git/': Could not resolve host: "
        "git.example.org",
        GIT,
        True,
    ),
    Case(
        "fatal: unable to access 'https://git.example.org/shop.git/': Failed to connect to "
        "git.example.org port 443 after 2 ms: Connection refused",
        GIT,
        True,
    ),
    Case(
        "ssh: connect to host git.example.org port 22: Connection timed out\n"
        "fatal: Could not read from remote repository.\n\n"
        "Please make sure you have the correct access rights\nand the repository exists.",
        GIT,
        True,
        evidence="Connection timed out",
    ),
    Case(
        "fatal: unable to access 'https://git.example.org/shop.git/': The requested URL "
        "returned error: 500",
        GIT,
        True,
    ),
    Case(
        "error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502\n"
        "fatal: the remote end hung up unexpectedly",
        GIT,
        True,
    ),
    Case("fatal: early EOF\nfatal: index-pack failed", GIT, True),
    Case(
        "fatal: unable to access 'https://git.example.org/shop.git/': Operation timed out after "
        "30001 milliseconds with 0 out of 0 bytes received",
        GIT,
        True,
    ),
    Case(
        'Timeout: the command "git fetch --prune --no-tags origin +refs/heads/main:refs/'
        'remotes/origin/main" did not complete in 30 secs.',
        GIT,
        True,
    ),
    Case(
        "remote: Invalid username or password.\n"
        "fatal: Authentication failed for 'https://git.example.org/shop.git/'",
        GIT,
        False,
        evidence="Authentication failed",
    ),
    Case(
        "git@git.example.org: Permission denied (publickey).\n"
        "fatal: Could not read from remote repository.",
        GIT,
        False,
        evidence="Permission denied (publickey)",
    ),
    Case(
        "Host key verification failed.\nfatal: Could not read from remote repository.",
        GIT,
        False,
        evidence="Host key verification failed",
    ),
    Case("fatal: couldn't find remote ref refs/heads/main", GIT, False),
    Case(
        "fatal: unable to access 'https://git.example.org/shop.git/': The requested URL "
        "returned error: 403",
        GIT,
        False,
    ),
    Case("fatal: repository 'https://git.example.org/shop.git/' not found", GIT, False),
    Case(
        "fatal: '/srv/git/moved-away.git' does not appear to be a git repository\n"
        "fatal: Could not read from remote repository.",
        GIT,
        False,
        evidence="does not appear to be a git repository",
    ),
    Case(
        "fatal: could not read Username for 'https://git.example.org': terminal prompts disabled",
        GIT,
        False,
    ),
]


@pytest.mark.parametrize("case", GIT, ids=[c.text[:60] for c in GIT])
def test_git_texts(case: Case) -> None:
    fault = git_fault(case.text)
    assert (fault.component, fault.transient) == (case.component, case.transient)
    assert case.evidence in fault.evidence
    assert "\n" not in fault.evidence


@pytest.mark.parametrize(
    ("text", "reason", "words"),
    [
        ("fatal: unable to access 'x': Could not resolve host: x", "GitRemoteUnavailable", "unr"),
        ("fatal: Authentication failed for 'https://x/'", "ArtifactFailed", "refused"),
        ("fatal: couldn't find remote ref refs/heads/main", "ArtifactFailed", "refused"),
    ],
)
def test_a_git_error_names_the_remote_and_keeps_the_whole_text(
    text: str, reason: str, words: str
) -> None:
    err = git_error("cannot fetch main from https://x/", f"{text}\nfatal: more")
    assert isinstance(err, GitError)
    assert err.reason == reason
    assert err.message.startswith(f"cannot fetch main from https://x/: git remote {words}")
    assert err.detail == f"{text}\nfatal: more"


def test_a_docker_error_names_the_registry_or_the_engine() -> None:
    text = 'Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
    err = docker_error("checking image x", text, docker_fault(text))
    assert isinstance(err, DockerError)
    assert err.reason == Reason.REGISTRY_UNAVAILABLE
    assert err.message == f"checking image x: registry 127.0.0.1:5000 unreachable: {text}"
    assert err.detail == text
    text = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    err = docker_error("reading the live services", text, docker_fault(text))
    assert err.reason == Reason.DOCKER_UNAVAILABLE
    assert err.message.startswith("reading the live services: Docker engine unreachable: ")


@pytest.mark.parametrize(
    "text",
    [
        "fatal: sha1 file '/var/lib/reconciler/checkout/.git/index.lock' write error. "
        "Out of diskspace",
        "error: unable to write file desired-state/x: No space left on device",
        "fatal: could not open '.git/ORIG_HEAD' for writing: Read-only file system",
    ],
)
def test_a_local_git_command_on_a_full_disk_is_the_state_directorys_trouble(text: str) -> None:
    """Not the remote's, not the revision's: retried (the revert too) once there is room."""
    error = disk_error("revert failed", text)
    assert isinstance(error, StateError)
    assert error.reason is Reason.STATE_UNWRITABLE
    assert "the state directory cannot be written" in error.message
    assert disk_error("revert failed", "error: could not revert 1234567... Bump") is None
