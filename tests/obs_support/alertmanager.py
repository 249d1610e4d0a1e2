"""Alertmanager configuration as the tests load it.

Production pins Alertmanager 0.28.1, whose `discord_configs` accept `webhook_url_file`. Debian 13's
0.28.1 (unpacked by scripts/deps.sh) loads the production file as it is; for a live server the
tests point the credential files at files they wrote. Debian 12's 0.25 predates Discord's
`webhook_url_file`, so for it (`for_025=True`) the copy also swaps that one key. The copy differs
from production in exactly these ways, and nothing else:

- every `*_file` credential path points at a file the test wrote (the secret's content);
- with for_025: Discord's `webhook_url_file: F` becomes `webhook_url: <content of F>`;
- the template glob points at the repository's templates;
- optionally, the SMTP smarthost points at a local server, and group_wait/group_interval are
  shortened so a test sees notifications (and resolutions) in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from obs_support import files

SECRET_FILE_KEYS = (
    "smtp_auth_password_file",
    "slack_api_url_file",
    "auth_password_file",
    "api_url_file",
    "webhook_url_file",
)


def secret_files(config: dict[str, Any]) -> set[str]:
    """Every credential file path the configuration reads."""
    paths: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in SECRET_FILE_KEYS and isinstance(value, str):
                    paths.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return paths


def _write_secrets(
    config: dict[str, Any], directory: Path, secrets: dict[str, str]
) -> dict[str, Path]:
    """Each credential file path of CONFIG, mapped to the file written in DIRECTORY in its place."""
    local: dict[str, Path] = {}
    for path in secret_files(config):
        name = Path(path).name
        if name not in secrets:
            raise KeyError(f"no test content for secret {name}")
        target = directory / name
        target.write_text(secrets[name] + "\n")
        target.chmod(0o600)
        local[path] = target
    return local


def _discord_inline(
    receivers: list[dict[str, Any]], local: dict[str, Path]
) -> list[dict[str, Any]]:
    """Discord receivers with `webhook_url_file: F` as `webhook_url: <content of F>` (0.25)."""
    return [
        {
            ("webhook_url" if k == "webhook_url_file" else k): (
                local[v].read_text().strip() if k == "webhook_url_file" else v
            )
            for k, v in item.items()
        }
        for item in receivers
    ]


def _rewrite(node: Any, local: dict[str, Path], for_025: bool) -> Any:
    """NODE with its credential paths pointing at the LOCAL files (and Discord's inlined)."""
    if isinstance(node, list):
        return [_rewrite(i, local, for_025) for i in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "discord_configs" and for_025:
            out[key] = _discord_inline(value, local)
        elif key in SECRET_FILE_KEYS and isinstance(value, str):
            out[key] = str(local[value])
        else:
            out[key] = _rewrite(value, local, for_025)
    return out


def _shorten_groups(root: dict[str, Any]) -> None:
    """group_wait 1 s and group_interval 2 s on the root route, and on the routes under it that
    set their own."""
    for route in [root, *root.get("routes", [])]:
        for key, value in (("group_wait", "1s"), ("group_interval", "2s")):
            if key in route or route is root:
                route[key] = value


def write_variant(
    directory: Path,
    secrets: dict[str, str],
    smarthost: str | None = None,
    fast_groups: bool = False,
    for_025: bool = False,
) -> Path:
    """Write the test copy into DIRECTORY. SECRETS maps each secret's base name
    (e.g. ``alertmanager_slack_webhook_url``) to its content."""
    config = files.load_yaml(files.ALERTMANAGER_CONFIG)
    directory.mkdir(parents=True, exist_ok=True)
    local = _write_secrets(config, directory, secrets)
    variant = _rewrite(config, local, for_025)
    variant["templates"] = [str(files.ALERTMANAGER_TEMPLATES / "*.tmpl")]
    if smarthost:
        variant["global"]["smtp_smarthost"] = smarthost
        variant["global"]["smtp_require_tls"] = False
    if fast_groups:
        _shorten_groups(variant["route"])
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(variant, sort_keys=False))
    return path


DEFAULT_SECRETS = {
    "alertmanager_slack_webhook_url": "https://hooks.slack.invalid/services/T000/B000/XXXX",
    "alertmanager_discord_webhook_url": "https://discord.invalid/api/webhooks/1/abc",
    "alertmanager_smtp_password": "not-a-real-password",
}
