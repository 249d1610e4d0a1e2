"""Signed revisions with git's own verification: real OpenPGP and SSH keys made here, a real bare
remote. Only commits signed by a key of the allow-list are trusted; the agent's reverts are signed
with its own key and pass the next check; what is wrong is named without any key material."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from reconciler_support.gitrepo import Remote, git, opened
from reconciler_support.signing import GpgKey, SshKey

from reconciler.adapters.git import GitRepo
from reconciler.config import GitConfig, VerifyConfig
from reconciler.errors import ConfigError
from reconciler.masking import Masker
from reconciler.models import RevisionInfo
from reconciler.signatures import VerifyMode, problem, verdict

IMAGES = "desired-state/test/images.yaml"
STACK = "desired-state/test/stack.yml"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, GpgKey | SshKey]]:
    root = tmp_path_factory.mktemp("keys")
    made: dict[str, GpgKey | SshKey] = {
        "alice": GpgKey.make(root, "Alice", "alice@example.org"),
        "mallory": GpgKey.make(root, "Mallory", "mallory@example.org"),
        "agent-gpg": GpgKey.make(root, "Agent", "reconciler@example.org"),
        "bob": SshKey.make(root, "bob", "bob@example.org"),
        "eve": SshKey.make(root, "eve", "eve@example.org"),
        "agent-ssh": SshKey.make(root, "agent", "reconciler@example.org"),
    }
    yield made
    for key in made.values():
        if isinstance(key, GpgKey):
            key.stop()


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    r = Remote(tmp_path)
    r.write({STACK: "services: {api: {}}\n", IMAGES: "api: r/api:1\n"}, "Add the api")
    return r


def _allow(tmp_path: Path, keys: dict[str, GpgKey | SshKey], agent: str) -> GitConfig:
    alice, bob = keys["alice"], keys["bob"]
    assert isinstance(alice, GpgKey)
    assert isinstance(bob, SshKey)
    signers = tmp_path / "allowed_signers"
    signers.write_text(bob.allowed_signer + "\n")
    signing = keys[agent]
    key_file = (
        signing.secret(tmp_path / "agent.asc") if isinstance(signing, GpgKey) else signing.private
    )
    return GitConfig(
        path="desired-state/test",
        push_retries=1,
        timeout=30,
        author_email="reconciler@example.org",
        verify=VerifyConfig(VerifyMode.ALL, signers, alice.public(tmp_path / "allowed.asc")),
        signing_key_file=key_file,
    )


def _repo(remote: Remote, tmp_path: Path, config: GitConfig) -> GitRepo:
    config = replace(config, url=remote.url)
    return opened(GitRepo(config, tmp_path / "state" / "checkout", Masker()))


@pytest.mark.parametrize("agent", ["agent-ssh", "agent-gpg"])
async def test_only_allowed_keys_are_trusted_and_the_agents_revert_is(
    remote: Remote, tmp_path: Path, keys: dict[str, GpgKey | SshKey], agent: str
) -> None:
    repo = _repo(remote, tmp_path, _allow(tmp_path, keys, agent))
    base = (await repo.fetch()).sha
    by_alice = remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2", sign=keys["alice"])
    by_bob = remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3", sign=keys["bob"])
    await repo.fetch()

    found = await repo.signatures(base, by_bob, every=True)
    assert [s.sha for s in found] == [by_bob, by_alice]
    assert all(s.good for s in found)
    assert found[0].signer == "bob@example.org"
    assert found[1].signer == "Alice <alice@example.org>"
    assert verdict(found).trusted
    assert verdict(found).signer.startswith("bob@example.org (key SHA256:")

    # the agent reverts bob's commit, signed with its own key: trusted by the next check
    bad = RevisionInfo(by_bob, "Bump api to 3")
    revert = await repo.revert([bad], bad, 'Revert "Bump api to 3"', "Automatic revert.")
    assert revert is not None
    head = await repo.fetch()
    assert head.sha == revert
    (own,) = await repo.signatures(by_bob, revert, every=True)
    assert own.good, problem(own)
    assert "reconciler@example.org" in own.signer or own.signer.startswith("Agent")
    assert remote.show(IMAGES) == "api: r/api:2\n"
    # signing left no gpg-agent behind in the agent's GnuPG home
    pids = subprocess.run(
        ["pgrep", "-f", f"gpg-agent.*{tmp_path}/state/trust"], capture_output=True, text=True
    ).stdout.split()
    assert pids == []


async def test_unsigned_unknown_and_untrusted_signatures_are_named(
    remote: Remote, tmp_path: Path, keys: dict[str, GpgKey | SshKey]
) -> None:
    repo = _repo(remote, tmp_path, _allow(tmp_path, keys, "agent-ssh"))
    base = (await repo.fetch()).sha
    unsigned = remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2")
    by_mallory = remote.write({IMAGES: "api: r/api:3\n"}, "Bump api to 3", sign=keys["mallory"])
    by_eve = remote.write({IMAGES: "api: r/api:4\n"}, "Bump api to 4", sign=keys["eve"])
    outside = remote.write({"README.md": "notes\n"}, "Notes, outside the folder")
    by_alice = remote.write({IMAGES: "api: r/api:5\n"}, "Bump api to 5", sign=keys["alice"])
    await repo.fetch()

    (head_only,) = await repo.signatures(base, by_alice, every=False)
    assert head_only.good  # mode head: the head is signed, what came before is not looked at

    found = {s.sha: s for s in await repo.signatures(base, by_alice, every=True)}
    assert outside not in found  # does not touch the environment's folder
    assert set(found) == {by_alice, by_eve, by_mallory, unsigned}
    why = {sha: problem(s) for sha, s in found.items()}
    assert why[by_alice] is None
    assert why[unsigned] == (
        f"commit {unsigned[:12]} ('Bump api to 2' by Dev <dev@example.org>) is not signed"
    )
    assert "is signed by a key that is not in the allow-list" in str(why[by_mallory])
    mallory = keys["mallory"]
    assert isinstance(mallory, GpgKey)
    assert mallory.fingerprint[-16:] in str(why[by_mallory])  # the key, so a person can find it
    assert "is signed by a key that is not in the allow-list: key SHA256:" in str(why[by_eve])
    result = verdict(tuple(found.values()))
    assert not result.trusted
    assert len(result.problems) == 3
    for text in result.problems:
        assert "PRIVATE KEY" not in text


async def test_a_rewritten_commit_loses_its_signature(
    remote: Remote, tmp_path: Path, keys: dict[str, GpgKey | SshKey]
) -> None:
    """Amending a signed commit (to slip a change in under its message) drops the signature."""
    repo = _repo(remote, tmp_path, _allow(tmp_path, keys, "agent-ssh"))
    remote.write({IMAGES: "api: r/api:2\n"}, "Bump api to 2", sign=keys["alice"])
    (remote.work / IMAGES).write_text("api: evil/api:2\n")
    git(remote.work, "commit", "-q", "-a", "--amend", "--no-edit")
    git(remote.work, "push", "-q", "--force", "origin", "HEAD:main")
    head = await repo.fetch()
    (signature,) = await repo.signatures(None, head.sha, every=True)
    assert signature.status == "N"


def test_a_key_file_git_cannot_use_is_a_config_error(remote: Remote, tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-key"
    bogus.write_text("hello\n")
    config = GitConfig(url=remote.url, signing_key_file=bogus)
    with pytest.raises(ConfigError, match=r"signing_key_file: .* is neither an SSH private key"):
        GitRepo(config, tmp_path / "state" / "checkout", Masker())
    armoured = tmp_path / "broken.asc"
    armoured.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbroken\n")
    config = GitConfig(url=remote.url, verify=VerifyConfig(VerifyMode.HEAD, None, armoured))
    with pytest.raises(ConfigError, match=r"git\.verify\.gpg_keys_file: gpg cannot import"):
        GitRepo(config, tmp_path / "state2" / "checkout", Masker())
