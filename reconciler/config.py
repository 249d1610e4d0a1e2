"""The agent's configuration: grouped frozen dataclasses, read at start-up (never at import).

Sources, later ones win:

1. defaults below;
2. the YAML file (``--config``, ``$RECONCILER_CONFIG``, default ``/etc/reconciler/config.yaml``);
3. environment variables ``RECONCILER_<KEY>`` for top-level keys and
   ``RECONCILER_<SECTION>__<KEY>`` for nested ones (``RECONCILER_GIT__BRANCH=main``,
   ``RECONCILER_SYNC__PRUNE=true``, ``RECONCILER_RENDER__VARIABLES__DOMAIN=example.org``).

Secrets are never values in the file: they are paths (``*_file``) read when needed.
``reconciler/config.example.yaml`` documents every key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import yamlio
from reconciler.config_sections import HttpConfig, NotifyConfig, StateConfig
from reconciler.config_values import build
from reconciler.errors import ConfigError
from reconciler.forges import MERGE_METHODS, REVERT_VIA, target
from reconciler.models import HealthCheck
from reconciler.signatures import VerifyMode
from reconciler.windows import SyncWindow

DEFAULT_CONFIG = Path("/etc/reconciler/config.yaml")
ENV_PREFIX = "RECONCILER_"
_URL_PASSWORD = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class VerifyConfig:
    """Which revisions may be deployed, by their signatures (``reconciler.signatures``)."""

    mode: VerifyMode = VerifyMode.OFF
    #: SSH keys allowed to sign, in git's allowed-signers format (``gpg.ssh.allowedSignersFile``)
    allowed_signers_file: Path | None = None
    #: OpenPGP public keys allowed to sign (ASCII-armoured, one file, ``gpg --export --armor``)
    gpg_keys_file: Path | None = None


@dataclass(frozen=True)
class GitConfig:
    url: str = ""
    branch: str = "main"
    path: str = "desired-state/production"
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    token_file: Path | None = None
    #: CA bundle (PEM) that signs the git server's HTTPS certificate, for a private CA
    ca_file: Path | None = None
    username: str = "x-access-token"
    push_reverts: bool = True
    #: how a revert reaches the branch: ``push`` (directly), ``pull_request`` (always through a
    #: pull/merge request, ``forge.*``), ``auto`` (directly, or through a request when the
    #: branch refuses direct pushes: protected)
    revert_via: str = "push"
    push_retries: int = 3
    author_name: str = "Driftless reconciler"
    author_email: str = "reconciler@driftless.invalid"
    timeout: float = 120.0
    #: web address of a commit, ``{sha}`` placeholder (status page and chat links); guessed for
    #: GitHub, GitLab, Bitbucket and Codeberg clone URLs
    commit_url: str = ""
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    #: the agent's own key, which signs the reverts it pushes: an SSH private key, or an
    #: ASCII-armoured OpenPGP secret key (no passphrase); trusted by ``verify`` as well
    signing_key_file: Path | None = None


@dataclass(frozen=True)
class ForgeConfig:
    """The forge whose API opens the pull (merge) request of a revert (``git.revert_via``)."""

    #: github or gitlab; guessed from git.url for github.com and gitlab.com
    kind: str = ""
    #: the REST API's base URL; default https://api.github.com, https://gitlab.com/api/v4, or
    #: https://<git.url's host>/api/v3 (GitHub Enterprise) and /api/v4 (self-managed GitLab)
    api_url: str = ""
    #: owner/name (GitHub) or the project's path or numeric id (GitLab); guessed from git.url
    repository: str = ""
    #: the API token (GitHub: Pull requests + Contents write; GitLab: api scope, Developer)
    token_file: Path | None = None
    #: ask the forge to merge the request once its required checks pass
    auto_merge: bool = False
    merge_method: str = "merge"
    timeout: float = 30.0


@dataclass(frozen=True)
class PromoteConfig:
    """Where a revision verified here is proposed next (``reconciler.promotion``)."""

    #: the next environment's folder (e.g. desired-state/production); empty: no promotion
    path: str = ""
    #: its name, in the pull request's title (default: the folder's name)
    environment: str = ""
    pull_request: bool = True  #: a pull request for the branch (forge.*); false: the branch only


@dataclass(frozen=True)
class SyncConfig:
    interval: float = 60.0
    jitter: float = 10.0
    retry_interval: float = 30.0
    prune: bool = False
    self_heal: bool = True
    dry_run: bool = False
    #: when applying is allowed or denied (Argo CD's sync windows); none: at any time
    windows: tuple[SyncWindow, ...] = ()


@dataclass(frozen=True)
class TimeoutsConfig:
    apply: float = 300.0
    verify: float = 600.0
    rollback: float = 300.0
    notify: float = 10.0


@dataclass(frozen=True)
class AnalysisConfig:
    #: the stack's Prometheus, for the canary's analyses (empty: analyses are inconclusive)
    prometheus_url: str = ""
    #: the stack network to reach it through (a probe container), or empty to reach it directly
    network: str = ""
    timeout: float = 5.0


@dataclass(frozen=True)
class HealthConfig:
    timeout: float = 60.0
    interval: float = 2.0
    request_timeout: float = 5.0
    probe_image: str = ""
    #: the attachable network the probe container starts on, reached at its address there: for
    #: an agent that runs in a container on that network (the Swarm service). Empty: the
    #: default bridge, its port published on the engine host's 127.0.0.1
    probe_network: str = ""
    checks: tuple[HealthCheck, ...] = ()


@dataclass(frozen=True)
class DockerConfig:
    cli: str = "docker"
    host: str = ""
    preflight_images: bool = True
    validate_with_cli: bool = True
    probe_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderConfig:
    variables: dict[str, str] = field(default_factory=dict)
    #: the age identity that decrypts the desired state's SOPS files (and keys their names)
    sops_age_key_file: Path | None = None


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "json"


@dataclass(frozen=True)
class Config:
    stack: str = "driftless"
    environment: str = "production"
    state_dir: Path = Path("/var/lib/reconciler")
    history_size: int = 50
    git: GitConfig = field(default_factory=GitConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    log: LogConfig = field(default_factory=LogConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    forge: ForgeConfig = field(default_factory=ForgeConfig)
    promote: PromoteConfig = field(default_factory=PromoteConfig)
    state: StateConfig = field(default_factory=StateConfig)

    @property
    def checkout_dir(self) -> Path:
        return self.state_dir / "checkout"


# ------------------------------------------------------------------ loading


def load_config(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_git: bool = True,
) -> Config:
    """Read the file (if any) and the environment; raise ``ConfigError`` naming the bad key."""
    env = os.environ if env is None else env
    if path is None:
        env_path = env.get(ENV_PREFIX + "CONFIG")
        path = Path(env_path) if env_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yamlio.load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
        except Exception as exc:
            raise ConfigError(f"config {path}: invalid YAML: {exc}") from exc
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"config {path}: expected a mapping at the top")
        data = raw or {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        parts = _env_path(key[len(ENV_PREFIX) :].split("__"))
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    config: Config = build(Config, data, "")
    _validate(config, require_git=require_git)
    return config


def _env_path(raw: list[str]) -> list[str]:
    """Lower-case the parts that name config keys; keys inside a mapping value (such as
    ``render.variables``) keep their case."""
    parts: list[str] = []
    cls: Any = Config
    for index, part in enumerate(raw):
        if cls is None:
            parts.append("__".join(raw[index:]))
            break
        name = part.lower()
        parts.append(name)
        hints = typing.get_type_hints(cls) if dataclasses.is_dataclass(cls) else {}
        tp = hints.get(name)
        cls = tp if tp is not None and dataclasses.is_dataclass(tp) else None
        if tp is not None and typing.get_origin(tp) is dict and index + 1 < len(raw):
            parts.append("__".join(raw[index + 1 :]))
            break
    return parts


def _validate(config: Config, *, require_git: bool) -> None:
    problems = [
        *_setting_problems(config, require_git=require_git),
        *_secret_problems(config),
        *_forge_problems(config),
    ]
    if config.state.store not in ("file", "swarm"):
        problems.append("state.store must be file or swarm")
    if config.state.lease_duration < 6:
        problems.append("state.lease_duration must be at least 6s")
    if config.http.refresh < 1:
        problems.append("http.refresh must be at least 1s")
    if config.notify.retries < 0 or config.notify.dedup_window < 0:
        problems.append("notify.retries and notify.dedup_window must not be negative")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def _setting_problems(config: Config, *, require_git: bool) -> Iterator[str]:
    if not _NAME.match(config.stack):
        yield f"stack: {config.stack!r} is not a valid stack name"
    if not _NAME.match(config.environment):
        yield f"environment: {config.environment!r} is not a valid name"
    if require_git and not config.git.url:
        yield "git.url is required (RECONCILER_GIT__URL)"
    if config.git.path.startswith("/") or ".." in Path(config.git.path).parts:
        yield "git.path must be a relative path inside the repository"
    if config.sync.interval <= 0 or config.sync.retry_interval <= 0:
        yield "sync.interval and sync.retry_interval must be positive"
    if config.sync.jitter < 0:
        yield "sync.jitter must not be negative"
    if config.history_size < 1:
        yield "history_size must be at least 1"
    if config.log.format not in ("json", "text"):
        yield "log.format must be json or text"
    if config.log.level.upper() not in ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR"):
        yield "log.level must be DEBUG, INFO, WARNING or ERROR"


def _secret_problems(config: Config) -> Iterator[str]:
    """Credentials: none in the git URL, at most one for git, their files where they are."""
    if _URL_PASSWORD.match(config.git.url):
        yield "git.url must not hold a password or token: put it in git.token_file"
    for name in ("ssh_key_file", "token_file", "known_hosts_file", "ca_file"):
        secret = getattr(config.git, name)
        if secret is not None and not secret.is_file():
            yield f"git.{name}: {secret} does not exist"
    if config.git.ssh_key_file and config.git.token_file:
        yield "git: give ssh_key_file or token_file, not both"
    yield from _trust_problems(config.git)
    for section, names in (
        ("render", ("sops_age_key_file",)),
        ("http", ("token_file", "webhook_secret_file", "gitlab_token_file")),
        ("notify", ("slack_url_file", "discord_url_file", "webhook_url_file")),
        ("forge", ("token_file",)),
    ):
        for name in names:
            secret = getattr(getattr(config, section), name)
            if secret is not None and not secret.is_file():
                yield f"{section}.{name}: {secret} does not exist"


_KEYS = "git.verify.allowed_signers_file and/or git.verify.gpg_keys_file"
_SIGN = "set git.signing_key_file (or git.push_reverts: false)"


def _trust_problems(git: GitConfig) -> Iterator[str]:
    """Signature verification needs an allow-list, and a signing key for the agent's own
    reverts (an unsigned revert would be refused by the next pass)."""
    verify = git.verify
    for name in ("allowed_signers_file", "gpg_keys_file"):
        path = getattr(verify, name)
        if path is not None and not path.is_file():
            yield f"git.verify.{name}: {path} does not exist"
    if git.signing_key_file is not None and not git.signing_key_file.is_file():
        yield f"git.signing_key_file: {git.signing_key_file} does not exist"
    on, mode = verify.mode is not VerifyMode.OFF, f"git.verify.mode is {verify.mode.value}"
    if on and not (verify.allowed_signers_file or verify.gpg_keys_file):
        yield f"{mode}: give the keys allowed to sign ({_KEYS})"
    if on and git.push_reverts and git.signing_key_file is None:
        yield f"{mode}: the reverts the agent pushes must be signed too; {_SIGN}"


def _forge_problems(config: Config) -> Iterator[str]:
    """``git.revert_via`` other than push needs a forge to open the request on, and its token."""
    via, forge = config.git.revert_via, config.forge
    if via not in REVERT_VIA:
        yield f"git.revert_via must be push, pull_request or auto, not {via!r}"
    if forge.merge_method not in MERGE_METHODS:
        yield f"forge.merge_method must be merge, squash or rebase, not {forge.merge_method!r}"
    promote = config.promote.path
    if promote.startswith("/") or ".." in Path(promote).parts:
        yield "promote.path must be a relative path inside the repository"
    if via in ("pull_request", "auto"):
        needs = f"git.revert_via is {via}"
    elif promote and config.promote.pull_request:
        needs = "promote.path is set"
    else:
        return
    where = target(forge.kind, forge.api_url, forge.repository, config.git.url)
    if isinstance(where, str):
        yield f"{where} ({needs})"
    if forge.token_file is None:
        yield f"forge.token_file is required when {needs}"


def read_secret(path: Path) -> str:
    """A secret from its file (whitespace stripped); ``ConfigError`` without the content."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror}") from exc
