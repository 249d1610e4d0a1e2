"""runbooks/CONFIGURATION.md documents every reconciler key and every API variable (and only real
ones), and the example env files per environment load with the reconciler's and the API's own
loaders and hold no secret value."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from api.errors import SettingsError
from api.settings import Settings
from reconciler.config import Config, load_config
from reconciler.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "runbooks" / "CONFIGURATION.md"
EXAMPLES = sorted((ROOT / "runbooks" / "examples").glob("*.env"))
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|PRIVATE|CREDENTIAL|_KEY\b|WEBHOOK")
URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]+@")
SETTINGS = ROOT / "api" / "settings.py"


def config_keys(cls: type[Any] = Config, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            keys |= config_keys(type(default), f"{prefix}{f.name}.")
        else:
            keys.add(prefix + f.name)
    return keys


def env_name(key: str) -> str:
    return "RECONCILER_" + key.upper().replace(".", "__")


def documented_rows() -> dict[str, str]:
    """`key` → its environment variable, from the reconciler tables."""
    rows = {}
    for key, env in re.findall(r"^\| `([a-z_.]+)` \| `(RECONCILER_[A-Z_]+)", DOC.read_text(), re.M):
        rows[key] = env
    return rows


def test_every_reconciler_key_is_documented_with_its_environment_variable() -> None:
    rows = documented_rows()
    missing = sorted(config_keys() - set(rows))
    assert not missing, f"add these reconciler keys to runbooks/CONFIGURATION.md: {missing}"
    for key, env in rows.items():
        assert env.rstrip("_") == env_name(key).rstrip("_"), f"{key}: documented as {env}"


def test_no_documented_key_is_made_up() -> None:
    unknown = sorted(set(documented_rows()) - config_keys())
    assert not unknown, f"CONFIGURATION.md documents keys the reconciler does not have: {unknown}"


def example_env(path: Path) -> dict[str, str]:
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=value: {line!r}"
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: {line!r}"
        values[key] = value
    return values


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_env_files_hold_no_secret_values(path: Path) -> None:
    for key, value in example_env(path).items():
        if SECRET_WORDS.search(key) and not key.endswith("_FILE"):
            pytest.fail(f"{path.name}: {key} holds a secret value; use {key}_FILE and a file")
        assert not re.search(r"(ghp_|xox[bp]-|hooks\.slack\.com/services/T)", value), key
        assert not URL_WITH_PASSWORD.search(value), f"{path.name}: {key} has a password in a URL"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_reconciler_settings_load(path: Path) -> None:
    env = {k: v for k, v in example_env(path).items() if k.startswith("RECONCILER_")}
    assert env, f"{path.name} has no reconciler settings"
    env.setdefault("RECONCILER_GIT__URL", "git@github.com:acme/driftless.git")
    try:
        config = load_config(path=None, env=env)
    except ConfigError as exc:
        # the secret files named there exist only on the VM; every other problem is a real one
        problems = str(exc).removeprefix("invalid configuration: ").split("; ")
        others = [p for p in problems if not p.endswith("does not exist")]
        assert not others, f"{path.name}: {others}"
        return
    assert config.environment == path.stem


def test_example_files_exist_for_every_environment() -> None:
    assert [p.stem for p in EXAMPLES] == ["development", "production", "staging"]
    for path in EXAMPLES:
        assert f"examples/{path.name}" in DOC.read_text()


def api_variables() -> set[str]:
    """Every variable api/settings.py reads (its _Reader calls name them as literals)."""
    names = set(re.findall(r"\br\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS.read_text()))
    secrets = set(
        re.findall(r"\br\.(?:secret|url)\(\s*\"([A-Z][A-Z0-9_]*)\"", SETTINGS.read_text())
    )
    return names | {f"{name}_FILE" for name in secrets}


def api_section() -> str:
    text = DOC.read_text()
    start = text.index("\n## API\n")
    return text[start : text.index("\n## ", start + 1)]


def test_every_api_variable_is_documented_and_none_is_made_up() -> None:
    variables = api_variables()
    assert {"DATABASE_URL", "DATABASE_URL_FILE", "REDIS_URL", "PORT"} <= variables
    first_cells = re.findall(r"^\| ([^|]+) \|", api_section(), re.M)
    documented = {v for cell in first_cells for v in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}
    missing = sorted(variables - documented)
    assert not missing, f"add these API variables to runbooks/CONFIGURATION.md: {missing}"
    made_up = sorted(documented - variables)
    assert not made_up, f"CONFIGURATION.md's API section names unknown variables: {made_up}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_api_settings_load(path: Path) -> None:
    env = {k: v for k, v in example_env(path).items() if not k.startswith("RECONCILER_")}
    assert set(env) <= api_variables(), (
        f"{path.name}: not API variables: {set(env) - api_variables()}"
    )
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        # the *_FILE secrets exist only inside the containers; every other problem is a real one
        problems = str(exc).split("\n")[1:]
        others = [p for p in problems if "_FILE=" not in p or "cannot be read" not in p]
        assert not others, f"{path.name}: {others}"
        return
    assert settings.environment == path.stem
