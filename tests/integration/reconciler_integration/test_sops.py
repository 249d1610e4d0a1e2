"""SOPS secrets with the real sops and age: the adapter decrypts what ``sops --encrypt`` wrote for
an age recipient, and whole passes of the agent (the composition root with the fakes of
``reconciler_support.world`` at its Swarm, git and HTTP ports, the real decryptor at its SOPS
port) create a secret before the deploy that mounts it, roll a service when its value changes
and remove the old secret after, refuse a file they cannot decrypt without touching anything
live, and never write a value to the state directory or a log line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger
from reconciler_support.sops import AgeKey, age_key, encrypt, holding, seal, tools_missing
from reconciler_support.world import FOLDER, STACK, STACK_FILE, STACK_YML, World

from reconciler.adapters.sops import SopsDecryptor
from reconciler.desired import RenderOptions, render
from reconciler.errors import Reason, ValidationError
from reconciler.models import PassResult
from reconciler.sopsfiles import Format, secret_name
from reconciler.yamlio import dump

pytestmark = pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))

PASSWORD = "hunter2-correct-horse"
ROTATED = "battery-staple-7f3a9c"
SECRETS_FILE = f"{FOLDER}/secrets.sops.yaml"
SOPS_STACK = (
    STACK_YML.replace("  web:\n", "  web:\n    secrets: [db_password]\n", 1)
    + "secrets:\n  db_password:\n    file: ./secrets.sops.yaml\n"
)


@pytest.fixture
def key(tmp_path: Path) -> AgeKey:
    return age_key(tmp_path / "keys" / "agent.txt")


@pytest.fixture
def logged() -> Iterator[list[str]]:
    """Every log line of the test, with its bound values."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message} {extra}")
    yield lines
    logger.remove(sink)


def _name(key: AgeKey, value: str) -> str:
    """The name the agent gives secret ``db_password`` of this value."""
    name_key = hashlib.sha256(key.path.read_bytes()).digest()
    return secret_name(STACK, "db_password", name_key, value.encode())


# ------------------------------------------------------------------ the adapter


def test_each_format_decrypts_to_what_the_renderer_reads(tmp_path: Path, key: AgeKey) -> None:
    decryptor = SopsDecryptor(key.path)
    cases = {
        "s.sops.yaml": ({"db": PASSWORD, "port": 5432}, Format.YAML),
        "s.sops.json": ({"db": PASSWORD}, Format.JSON),
        "s.sops.env": ({"DB": PASSWORD}, Format.DOTENV),
    }
    for name, (values, fmt) in cases.items():
        path = tmp_path / name
        path.write_text(seal({k: str(v) for k, v in values.items()}, key.recipient, name=name))
        assert PASSWORD not in path.read_text()
        assert json.loads(decryptor.decrypt(path, fmt)) == {k: str(v) for k, v in values.items()}
    pem = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
    path = tmp_path / "tls.enc.pem"
    path.write_text(encrypt(pem, Format.BINARY, key.recipient))
    assert decryptor.decrypt(path, Format.BINARY) == pem


def test_a_key_that_is_not_a_recipient_is_refused_with_sops_reason(
    tmp_path: Path, key: AgeKey
) -> None:
    path = tmp_path / "secrets.sops.yaml"
    path.write_text(seal({"db_password": PASSWORD}, key.recipient))
    other = age_key(tmp_path / "keys" / "other.txt")
    with pytest.raises(ValidationError) as refused:
        SopsDecryptor(other.path).decrypt(path, Format.YAML)
    assert refused.value.message == (
        f"the agent's age key is not one of the file's recipients (encrypted for {key.recipient})"
    )


def test_a_tampered_file_is_refused(tmp_path: Path, key: AgeKey) -> None:
    path = tmp_path / "secrets.sops.yaml"
    sealed = seal({"db_password": PASSWORD, "other": "x" * 12}, key.recipient)
    data = sealed.split("data:", 1)[1].split(",", 1)[0]
    path.write_text(sealed.replace(data, data[::-1], 1))
    with pytest.raises(ValidationError, match=r"MAC mismatch|message authentication failed"):
        SopsDecryptor(key.path).decrypt(path, Format.YAML)


def test_a_missing_key_file_is_named(tmp_path: Path, key: AgeKey) -> None:
    path = tmp_path / "secrets.sops.yaml"
    path.write_text(seal({"db_password": PASSWORD}, key.recipient))
    with pytest.raises(ValidationError, match=r"age key file .*nope\.txt .*cannot be read"):
        SopsDecryptor(tmp_path / "nope.txt").decrypt(path, Format.YAML)


def test_a_rendered_folder_names_the_value_and_holds_none(tmp_path: Path, key: AgeKey) -> None:
    folder = tmp_path / FOLDER
    folder.mkdir(parents=True)
    (folder / "stack.yml").write_text(SOPS_STACK)
    (folder / "images.yaml").write_text("web: reg.test/web:1\napi: reg.test/api:1\n")
    (folder / "secrets.sops.yaml").write_text(seal({"db_password": PASSWORD}, key.recipient))
    options = RenderOptions(STACK, "test", repo_root=tmp_path, decryptor=SopsDecryptor(key.path))
    desired = render(folder, options)
    name = _name(key, PASSWORD)
    assert desired.document["secrets"] == {"db_password": {"external": True, "name": name}}
    assert PASSWORD not in dump(desired.document)
    assert [(s.name, s.value) for s in desired.sealed_secrets] == [(name, PASSWORD.encode())]


# ------------------------------------------------------------------ passes of the agent


async def _deployed_with_sops(tmp_path: Path, key: AgeKey, value: str = PASSWORD) -> World:
    """The world's stack deployed at 1, then web given a secret from a SOPS file."""
    world = World(tmp_path)
    assert (await world.sync()).result is PassResult.SUCCESS
    world.decryptor = SopsDecryptor(key.path)
    files = {STACK_FILE: SOPS_STACK, SECRETS_FILE: seal({"db_password": value}, key.recipient)}
    world.remote.write(files, "Give web its database password from SOPS")
    return world


async def test_the_secret_is_created_before_the_deploy_that_mounts_it(
    tmp_path: Path, key: AgeKey, logged: list[str]
) -> None:
    world = await _deployed_with_sops(tmp_path, key)
    out = await world.sync()
    assert out.result is PassResult.SUCCESS, out.message
    name = _name(key, PASSWORD)
    assert world.swarm.mounted(STACK, "web") == [name]  # the fake's deploy needs it to exist
    assert world.swarm.secret_value(name) == PASSWORD.encode()
    assert world.swarm.secrets[name].labels == {
        "com.docker.stack.namespace": STACK,
        "driftless.sops": "db_password",
    }
    rendered = (world.config.state_dir / "rendered" / f"{STACK}.yml").read_text()
    assert f"name: {name}" in rendered
    assert holding(world.config.state_dir, [PASSWORD.encode()]) == []
    assert not [line for line in logged if PASSWORD in line]
    world.decryptor = SopsDecryptor(key.path)  # a restarted agent names it the same
    again = await world.sync()
    assert again.reason is Reason.IN_SYNC


async def test_a_new_value_rolls_the_service_and_the_old_secret_goes(
    tmp_path: Path, key: AgeKey, logged: list[str]
) -> None:
    world = await _deployed_with_sops(tmp_path, key)
    await world.sync()
    old, new = _name(key, PASSWORD), _name(key, ROTATED)
    world.remote.write({SECRETS_FILE: seal({"db_password": ROTATED}, key.recipient)}, "Rotate")
    out = await world.sync()
    assert out.result is PassResult.SUCCESS, out.message
    assert out.changed == ("web",)
    change = out.plan.change("web") if out.plan else None
    assert change is not None
    assert [(d.field, d.live, d.desired) for d in change.diffs if d.field == "secrets"] == [
        ("secrets", old, new)
    ]
    assert world.swarm.mounted(STACK, "web") == [new]
    assert list(world.swarm.secrets) == [new]  # the old one is no service's any more
    values = [PASSWORD.encode(), ROTATED.encode()]
    assert holding(world.config.state_dir, values) == []
    assert not [line for line in logged if PASSWORD in line or ROTATED in line]


async def test_a_failed_rotation_keeps_the_old_secret_for_the_rollback(
    tmp_path: Path, key: AgeKey
) -> None:
    world = await _deployed_with_sops(tmp_path, key)
    await world.sync()
    old, new = _name(key, PASSWORD), _name(key, ROTATED)
    world.remote.write({SECRETS_FILE: seal({"db_password": ROTATED}, key.recipient)}, "Rotate")
    world.swarm.deploy_error = f"invalid value {ROTATED} for DB_PASSWORD"  # masked
    out = await world.sync()
    assert out.result is PassResult.ROLLED_BACK
    assert world.swarm.mounted(STACK, "web") == [old]
    assert set(world.swarm.secrets) == {old, new}  # removed only after a success
    assert ROTATED not in out.message
    assert "***" in out.message
    assert holding(world.config.state_dir, [ROTATED.encode()]) == []


async def test_a_file_the_agent_cannot_decrypt_is_refused_and_nothing_live_changes(
    tmp_path: Path, key: AgeKey
) -> None:
    world = await _deployed_with_sops(tmp_path, key)
    other = age_key(tmp_path / "keys" / "other.txt")
    world.decryptor = SopsDecryptor(other.path)
    deploys = world.swarm.deploys
    out = await world.sync()
    assert out.result is PassResult.REFUSED
    assert out.reason is Reason.VALIDATION_FAILED
    assert out.message == (
        "desired state 'test' is invalid: secrets.db_password: cannot decrypt "
        "secrets.sops.yaml: the agent's age key is not one of the file's recipients "
        f"(encrypted for {key.recipient})"
    )
    assert world.swarm.deploys == deploys
    assert world.swarm.secrets == {}
    assert world.reverts() == []  # not the revision's fault: a key is missing


async def test_a_tampered_file_is_refused_with_the_mac_mismatch(
    tmp_path: Path, key: AgeKey
) -> None:
    world = await _deployed_with_sops(tmp_path, key)
    sealed = world.remote.tree()[SECRETS_FILE]
    mac = sealed.split("mac: ENC[AES256_GCM,data:", 1)[1].split(",", 1)[0]
    world.remote.write({SECRETS_FILE: sealed.replace(mac, mac[::-1])}, "Tamper")
    deploys = world.swarm.deploys
    out = await world.sync()
    assert out.result is PassResult.REFUSED
    assert "cannot decrypt secrets.sops.yaml" in out.message
    assert "MAC" in out.message or "authentication failed" in out.message
    assert world.swarm.deploys == deploys
    assert PASSWORD not in out.message
