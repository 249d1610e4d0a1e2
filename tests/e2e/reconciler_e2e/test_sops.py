"""SOPS secrets on the real Swarm, with real sops and age: the agent decrypts a secret committed
encrypted for its age key, creates it before the deploy, and the service's task reads the value
at /run/secrets/<name>; a new value rolls the service onto a new secret and the old one is
removed after the pass; a file the agent cannot decrypt is refused with nothing live touched.
The value is never in the state directory, the rendered file or the agent's output."""

from __future__ import annotations

import hashlib

import pytest
from reconciler_support.e2e import Env, sh, stack_yaml, wait_for
from reconciler_support.sops import AgeKey, age_key, holding, seal, tools_missing

from reconciler.cli import EXIT_OK, EXIT_REFUSED
from reconciler.sopsfiles import secret_name

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing())),
]

PASSWORD = "e2e-hunter2-correct-horse"
ROTATED = "e2e-battery-staple-9d41"
SECRETS = "desired-state/e2e/secrets.sops.yaml"


def _stack(env: Env) -> str:
    web_mounts = "    secrets: [db_password]\n"
    top = "secrets:\n  db_password:\n    file: ./secrets.sops.yaml\n"
    return stack_yaml(env.port, env.prefix, api=False, extra=web_mounts) + top


def _sync(env: Env, expect: int) -> str:
    result = env.cli("sync")
    out = result.stdout + result.stderr
    assert result.returncode == expect, f"exit {result.returncode}\n{out}"
    return out


def _read_in_task(env: Env, path: str) -> str:
    """``path`` as the running task of web reads it."""
    ids = sh("docker", "ps", "-q", "--filter",
             f"label=com.docker.swarm.service.name={env.stack}_web").stdout.split()  # fmt: skip
    assert len(ids) == 1, ids
    return sh("docker", "exec", ids[0], "cat", path).stdout


def _sops_secrets(env: Env) -> list[str]:
    out = sh("docker", "secret", "ls", "--filter", "label=driftless.sops",
             "--filter", f"label=com.docker.stack.namespace={env.stack}",
             "--format", "{{.Name}}").stdout  # fmt: skip
    return sorted(out.split())


def _name(env: Env, key: AgeKey, value: str) -> str:
    """The Swarm name the agent gives ``db_password`` of this value."""
    name_key = hashlib.sha256(key.path.read_bytes()).digest()
    return secret_name(env.stack, "db_password", name_key, value.encode())


@pytest.fixture
def key(env: Env) -> AgeKey:
    """The agent's age identity (outside the state directory, as on a VM)."""
    key = age_key(env.root / "keys" / "agent.txt")
    env.write_config(render={"sops_age_key_file": str(key.path)})
    return key


def test_a_sops_secret_is_mounted_rolled_and_its_old_version_removed(env: Env, key: AgeKey) -> None:
    env.remote.write(
        {
            "desired-state/e2e/stack.yml": _stack(env),
            "desired-state/e2e/images.yaml": f"web: {env.images['1']}\n",
            SECRETS: seal({"db_password": PASSWORD}, key.recipient),
        },
        "Web reads its database password from a SOPS file",
    )
    first = _sync(env, EXIT_OK)
    old = _name(env, key, PASSWORD)
    assert _sops_secrets(env) == [old]
    assert _read_in_task(env, "/run/secrets/db_password") == PASSWORD

    env.remote.write({SECRETS: seal({"db_password": ROTATED}, key.recipient)}, "Rotate it")
    rotated = _sync(env, EXIT_OK)
    new = _name(env, key, ROTATED)
    assert "success: ReconciliationSucceeded: deployed web" in rotated
    web = env.service("web")
    assert web is not None
    assert [s["SecretName"] for s in web["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]] == [
        new
    ]
    wait_for("the rolled task", lambda: _read_in_task(env, "/run/secrets/db_password") == ROTATED)
    assert _sops_secrets(env) == [new]  # the old one went after the pass

    values = [PASSWORD.encode(), ROTATED.encode()]
    assert holding(env.state_dir, values) == []  # status, rendered files, checkout
    for out in (first, rotated):
        assert PASSWORD not in out
        assert ROTATED not in out


def test_a_file_the_agent_cannot_decrypt_is_refused_and_live_is_untouched(
    env: Env, key: AgeKey
) -> None:
    env.remote.write(
        {
            "desired-state/e2e/stack.yml": _stack(env),
            "desired-state/e2e/images.yaml": f"web: {env.images['1']}\n",
            SECRETS: seal({"db_password": PASSWORD}, key.recipient),
        },
        "Web reads its database password from a SOPS file",
    )
    _sync(env, EXIT_OK)
    before = env.service("web")
    other = age_key(env.root / "keys" / "someone-else.txt")
    env.remote.write({SECRETS: seal({"db_password": ROTATED}, other.recipient)}, "Wrong key")
    out = _sync(env, EXIT_REFUSED)
    assert "cannot decrypt secrets.sops.yaml: the agent's age key is not one of the file's " in out
    assert other.recipient in out
    assert ROTATED not in out
    after = env.service("web")
    assert after is not None
    assert before is not None
    assert after["Version"] == before["Version"]
    assert _sops_secrets(env) == [_name(env, key, PASSWORD)]
    assert _read_in_task(env, "/run/secrets/db_password") == PASSWORD
