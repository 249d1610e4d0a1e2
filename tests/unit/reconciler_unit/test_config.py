"""Configuration: file, environment overrides, secrets from files, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.config import Config, load_config, read_secret
from reconciler.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "reconciler" / "config.example.yaml"
NO_SECRETS = {
    "RECONCILER_GIT__SSH_KEY_FILE": "",
    "RECONCILER_GIT__KNOWN_HOSTS_FILE": "",
}


def test_the_example_documents_every_key_and_loads() -> None:
    config = load_config(EXAMPLE, NO_SECRETS)
    assert config.git.url == "git@github.com:acme/driftless.git"
    assert config.sync.interval == 60.0
    assert config.timeouts.verify == 600.0
    assert config.health.checks[0].expect_status == (200,)
    text = EXAMPLE.read_text()
    for section in (
        "git",
        "sync",
        "timeouts",
        "health",
        "docker",
        "render",
        "log",
        "http",
        "notify",
        "forge",
    ):
        sub = getattr(Config(), section)
        for key in vars(sub):
            assert f"{key}:" in text, f"{section}.{key} is not documented in the example"
    for key in ("stack", "environment", "state_dir", "history_size"):
        assert f"{key}:" in text


def test_environment_overrides_every_level(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("git: {url: file:///x, branch: main}\nsync: {prune: false}\n")
    env = {
        "RECONCILER_STACK": "shop",
        "RECONCILER_GIT__BRANCH": "release",
        "RECONCILER_SYNC__PRUNE": "true",
        "RECONCILER_SYNC__INTERVAL": "2m",
        "RECONCILER_RENDER__VARIABLES__DOMAIN": "example.org",
        "RECONCILER_HEALTH__CHECKS": '[{"name": "site", "url": "http://x/", "status": "2xx"}]',
        "OTHER": "ignored",
    }
    config = load_config(path, env)
    assert config.stack == "shop"
    assert config.git.branch == "release"
    assert config.sync.prune is True
    assert config.sync.interval == 120.0
    assert config.render.variables == {"DOMAIN": "example.org"}
    assert config.health.checks[0].expect_status[0] == 200


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("stack: fromfile\ngit: {url: file:///x}\n")
    assert load_config(None, {"RECONCILER_CONFIG": str(path)}).stack == "fromfile"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("git: {url: x}\nsync: {intervall: 5}\n", {}, "unknown config key sync.intervall"),
        ("git: {url: x}\nsync: {interval: soon}\n", {}, "sync.interval: invalid value 'soon'"),
        ("git: {url: x}\nsync: {prune: maybe}\n", {}, "expected true or false"),
        ("stack: 'bad name'\ngit: {url: x}\n", {}, "not a valid stack name"),
        ("sync: {}\n", {}, "git.url is required"),
        ("git: {url: x, path: ../etc}\n", {}, "relative path inside the repository"),
        ("git: {url: x, token_file: /nonexistent/token}\n", {}, "token_file"),
        ("- a list\n", {}, "expected a mapping"),
        ("git: {url: x}\n", {"RECONCILER_GIT__URL__X": "1"}, "is not a section"),
    ],
)
def test_bad_config_is_a_clear_error(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(path, env)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml", {})


def test_secrets_come_from_files_and_errors_do_not_show_them(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    assert read_secret(token) == "s3cr3t-token"
    with pytest.raises(ConfigError) as info:
        read_secret(tmp_path / "missing")
    assert "s3cr3t" not in str(info.value)


def test_signature_verification_needs_an_allow_list_and_a_signing_key(tmp_path: Path) -> None:
    signers = tmp_path / "allowed_signers"
    signers.write_text('alice@example.org namespaces="git" ssh-ed25519 AAAA\n')
    key = tmp_path / "agent_key"
    key.write_text("key\n")
    path = tmp_path / "c.yaml"
    path.write_text("git: {url: file:///x, verify: {mode: off}}\n")
    assert load_config(path, {}).git.verify.mode.value == "off"  # YAML's bare off
    path.write_text("git: {url: file:///x, verify: {mode: sometimes}}\n")
    with pytest.raises(ConfigError, match=r"git\.verify\.mode: .* expected one of off, head, all"):
        load_config(path, {})
    path.write_text("git: {url: file:///x, verify: {mode: head}}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path, {})
    assert "give the keys allowed to sign" in str(refused.value)
    assert "set git.signing_key_file (or git.push_reverts: false)" in str(refused.value)
    path.write_text(
        f"git: {{url: file:///x, signing_key_file: {key}, "
        f"verify: {{mode: all, allowed_signers_file: {signers}}}}}\n"
    )
    config = load_config(path, {})
    assert config.git.verify.mode.value == "all"
    assert config.git.signing_key_file == key
    path.write_text(f"git: {{url: file:///x, verify: {{gpg_keys_file: {tmp_path}/none.asc}}}}\n")
    with pytest.raises(ConfigError, match=r"gpg_keys_file: .*none\.asc does not exist"):
        load_config(path, {})


WINDOWS_YAML = """git: {url: x}
sync:
  windows:
    - {kind: deny, schedule: "0 18 * * 5", duration: 60h, time_zone: Europe/Berlin,
       reason: weekend freeze}
    - kind: allow
      schedule: 0 8 * * 1-5
      duration: 10h
"""


def test_sync_windows_from_the_file_and_from_json_in_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(WINDOWS_YAML)
    freeze, office = load_config(path, {}).sync.windows
    assert (freeze.kind, freeze.schedule.expression, freeze.duration) == (
        "deny",
        "0 18 * * 5",
        216000,
    )
    assert (freeze.time_zone, freeze.reason) == ("Europe/Berlin", "weekend freeze")
    assert (office.kind, office.time_zone, office.reason) == ("allow", "UTC", "")
    env = {
        "RECONCILER_SYNC__WINDOWS": '[{"kind": "deny", "schedule": "0 0 * * 0", "duration": "1h"}]'
    }
    (only,) = load_config(path, env).sync.windows
    assert only.schedule.expression == "0 0 * * 0"
    assert load_config(None, {"RECONCILER_GIT__URL": "x"}).sync.windows == ()


def _window_yaml(entry: str) -> str:
    first = "{kind: allow, schedule: '0 8 * * *', duration: 1h}"
    return f"git: {{url: x}}\nsync:\n  windows:\n    - {first}\n    - {entry}\n"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{kind: deny, schedule: '0 25 * * *', duration: 1h}",
            "config sync.windows[1].schedule: '0 25 * * *': hour '25': the last value (25) is "
            "higher than the maximum value (23)",
        ),
        (
            "{kind: deny, schedule: '0 22 * *', duration: 1h}",
            "config sync.windows[1].schedule: '0 22 * *' has 4 fields; a schedule has 5",
        ),
        (
            "{kind: deny, schedule: '0 22 * * *', duration: 1h, time_zone: Europe/Berln}",
            "config sync.windows[1].time_zone: unknown time zone 'Europe/Berln'",
        ),
        (
            "{kind: deny, schedule: '0 22 * * *', duration: 1d}",
            "config sync.windows[1].duration: not a duration: '1d'",
        ),
        (
            "{kind: deny, schedule: '0 22 * * *', duration: 0s}",
            "config sync.windows[1].duration: must be longer than 0s",
        ),
        (
            "{kind: block, schedule: '0 22 * * *', duration: 1h}",
            "config sync.windows[1].kind: 'block' is not allow or deny",
        ),
        ("{kind: deny, duration: 1h}", "config sync.windows[1].schedule: missing"),
        (
            "{kind: deny, schedule: '0 22 * * *', duration: 1h, timeZone: UTC}",
            "config sync.windows[1]: unknown keys ['timeZone']",
        ),
    ],
)
def test_a_bad_sync_window_is_refused_naming_its_key(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(_window_yaml(entry))
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value).startswith(message)
