"""The git adapter over the transports teams use, against real servers on loopback: OpenSSH with a
deploy key and a pinned host key, and Nginx + ``git http-backend`` over HTTPS with a token and a
private CA. Fetching and pushing a revert work; a wrong key, token, host key or certificate is
refused with a clear error that never shows the secret, and nothing is pushed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from reconciler_support.gitrepo import Remote, opened
from reconciler_support.gitservers import HttpsServer, SshServer, ssh_keygen

from reconciler.adapters.git import GitRepo
from reconciler.config import ConfigError, GitConfig, load_config
from reconciler.errors import GitError
from reconciler.masking import Masker

IMAGES = "desired-state/test/images.yaml"
STACK = "desired-state/test/stack.yml"
TOKEN = "ghs_s3cretT0kenForTheTransportTest"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="sshd and nginx run as root here, as in the test command"
)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    (tmp_path / "srv").mkdir()
    r = Remote(tmp_path / "srv")
    r.write({STACK: "services: {api: {}}\n", IMAGES: "api: r/api:1\n"}, "Add the api")
    return r


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    server = SshServer(tmp_path / "sshd")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def https(tmp_path: Path, remote: Remote) -> Iterator[HttpsServer]:
    server = HttpsServer(tmp_path / "https", remote.bare.parent, "x-access-token", TOKEN)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _repo(tmp_path: Path, **kw: object) -> GitRepo:
    config = GitConfig(path="desired-state/test", push_retries=1, timeout=30, **kw)  # type: ignore[arg-type]
    return opened(GitRepo(config, tmp_path / "state" / "checkout", Masker()))


async def _fetch_and_revert(repo: GitRepo, remote: Remote) -> None:
    """What a failed deployment does with git: fetch the bad revision, revert it, push."""
    good = remote.head()
    bad = remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    head = await repo.fetch()
    assert head.sha == bad
    assert (repo.workdir / IMAGES).read_text() == "api: r/api:2\n"
    commits = await repo.offending_commits(good, head.sha)
    revert = await repo.revert(commits, head, 'Revert "Bump api to 2"', "Reason: api: HTTP 500")
    assert revert is not None
    assert revert == remote.head()
    assert remote.show(IMAGES) == "api: r/api:1\n"


# ---------------------------------------------------------------- SSH


def _deploy_key(tmp_path: Path, sshd: SshServer, *, authorized: bool = True) -> Path:
    key = tmp_path / "keys" / "deploy_key"
    key.parent.mkdir(exist_ok=True)
    public = ssh_keygen(key, "driftless-deploy")
    if authorized:
        sshd.authorize(public)
    return key


def _pinned_host_key(tmp_path: Path, sshd: SshServer) -> Path:
    known = tmp_path / "keys" / "known_hosts"
    known.write_text(sshd.known_hosts_line())
    return known


async def test_ssh_deploy_key_with_pinned_host_key_fetches_and_pushes_reverts(
    remote: Remote, sshd: SshServer, tmp_path: Path
) -> None:
    key = _deploy_key(tmp_path, sshd)
    known = _pinned_host_key(tmp_path, sshd)
    repo = _repo(tmp_path, url=sshd.url(remote.bare), ssh_key_file=key, known_hosts_file=known)
    await _fetch_and_revert(repo, remote)
    assert "Accepted publickey" in sshd.log.read_text()
    assert known.read_text() == sshd.known_hosts_line()  # the pinned file is never rewritten


async def test_ssh_host_key_not_matching_the_pinned_one_is_refused(
    remote: Remote, sshd: SshServer, tmp_path: Path
) -> None:
    key = _deploy_key(tmp_path, sshd)
    known = _pinned_host_key(tmp_path, sshd)
    sshd.stop()
    sshd.new_host_key()  # someone else answers on the git host's address
    sshd.start()
    repo = _repo(tmp_path, url=sshd.url(remote.bare), ssh_key_file=key, known_hosts_file=known)
    before = remote.log()
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "cannot fetch main from ssh://" in str(info.value)
    assert "Host key verification failed" in str(info.value)
    assert "Accepted publickey" not in sshd.log.read_text()  # the key was never offered
    assert remote.log() == before


async def test_ssh_without_pinned_key_trusts_the_first_and_refuses_a_changed_one(
    remote: Remote, sshd: SshServer, tmp_path: Path
) -> None:
    key = _deploy_key(tmp_path, sshd)
    repo = _repo(tmp_path, url=sshd.url(remote.bare), ssh_key_file=key)
    assert (await repo.fetch()).sha == remote.head()
    recorded = tmp_path / "state" / "known_hosts"
    assert sshd.host_public.split()[1] in recorded.read_text()
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    remote.write({IMAGES: "api: r/api:9\n"}, "Bump api to 9")
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in str(info.value)
    assert (repo.workdir / IMAGES).read_text() == "api: r/api:1\n"  # the checkout stayed


async def test_ssh_key_the_server_does_not_know_is_refused_without_showing_it(
    remote: Remote, sshd: SshServer, tmp_path: Path
) -> None:
    key = _deploy_key(tmp_path, sshd, authorized=False)
    repo = _repo(tmp_path, url=sshd.url(remote.bare), ssh_key_file=key)
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "Permission denied (publickey)" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)


# ---------------------------------------------------------------- HTTPS


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "keys" / "git_token"
    path.parent.mkdir(exist_ok=True)
    path.write_text(token + "\n")
    return path


async def test_https_token_and_private_ca_fetch_and_push_reverts(
    remote: Remote, https: HttpsServer, tmp_path: Path
) -> None:
    repo = _repo(
        tmp_path,
        url=https.url(remote.bare),
        token_file=_token_file(tmp_path, TOKEN),
        ca_file=https.ca_file,
    )
    await _fetch_and_revert(repo, remote)
    # the push went through the server as the token's user
    assert (
        '"POST /remote.git/git-receive-pack HTTP/1.1" 200'
        in (https.root / "access.log").read_text()
    )
    assert "x-access-token" in (https.root / "access.log").read_text()
    state = tmp_path / "state"
    for path in state.rglob("*"):
        if path.is_file() and not path.is_relative_to(state / "checkout" / ".git" / "objects"):
            assert TOKEN not in path.read_text(errors="replace"), path


async def test_https_wrong_token_is_refused_and_masked(
    remote: Remote, https: HttpsServer, tmp_path: Path
) -> None:
    wrong = "ghs_wrongTokenThatMustNotLeak"
    repo = _repo(
        tmp_path,
        url=https.url(remote.bare),
        token_file=_token_file(tmp_path, wrong),
        ca_file=https.ca_file,
    )
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "Authentication failed" in str(info.value)
    assert wrong not in str(info.value)


async def test_https_certificate_from_an_unknown_ca_is_refused(
    remote: Remote, https: HttpsServer, tmp_path: Path
) -> None:
    repo = _repo(tmp_path, url=https.url(remote.bare), token_file=_token_file(tmp_path, TOKEN))
    with pytest.raises(GitError) as info:
        await repo.fetch()
    assert "certificate" in str(info.value).lower()
    assert TOKEN not in str(info.value)
    # the token was never sent to a server that could not prove who it is
    assert "x-access-token" not in (https.root / "access.log").read_text()


def test_a_password_in_the_git_url_is_refused_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("git:\n  url: https://bot:ghp_inline@git.example.org/acme/shop.git\n")
    with pytest.raises(ConfigError) as info:
        load_config(config, env={})
    assert "git.url must not hold a password or token: put it in git.token_file" in str(info.value)
    assert "ghp_inline" not in str(info.value)
