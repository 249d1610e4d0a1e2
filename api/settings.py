"""Configuration: plain frozen dataclasses read from the environment at start-up.

Nothing here runs at import time. ``Settings.from_env(os.environ)`` is called by the CLI (and by
tests with a dict), reads every variable once, checks it, and reports every problem at once in a
``SettingsError``. Each secret may also come from a file named by ``<NAME>_FILE`` (Docker secrets).
The variables are documented in ``api/README.md``; keep the two in step.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from api import __version__
from api.errors import SettingsError
from api.faults import Fault, parse_fault

ENVIRONMENTS = ("development", "staging", "production")
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
DEFAULT_TRUSTED_PROXIES = "127.0.0.1/32,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

T = TypeVar("T")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ServerSettings:
    host: str = "0.0.0.0"  # noqa: S104 - a container listens on every interface
    port: int = 3000
    shutdown_timeout: float = 25.0
    startup_timeout: float = 60.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    pool_min_size: int = 1
    pool_max_size: int = 10
    command_timeout: float = 10.0
    connect_timeout: float = 5.0
    migrate_on_start: bool = True
    #: ``api migrate``: how long to wait for the server to be reachable before failing
    migrate_wait: float = 120.0


@dataclass(frozen=True)
class RedisSettings:
    url: str
    max_connections: int = 50
    timeout: float = 1.0
    key_prefix: str = "driftless:"


@dataclass(frozen=True)
class AuthSettings:
    token_ttl: int = 86_400
    # argon2id as the OWASP Password Storage Cheat Sheet recommends: 19 MiB, 2 passes, 1 lane
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    argon2_max_concurrent: int = 2
    principal_cache_ttl: int = 60


@dataclass(frozen=True)
class LimitSettings:
    """Rate limits; a limit of 0 switches that limit off."""

    per_ip: int = 600
    per_ip_window: int = 60
    sync_interval: float = 0.1
    login_per_ip: int = 20
    login_per_ip_window: int = 60
    login_failures_per_email: int = 10
    login_per_email_window: int = 900


@dataclass(frozen=True)
class HttpSettings:
    cors_allow_origins: tuple[str, ...] = ()
    hsts_max_age: int = 0
    max_body_bytes: int = 1_048_576
    trusted_proxies: tuple[IpNetwork, ...] = ()
    country_header: str = "x-country-code"


@dataclass(frozen=True)
class LogSettings:
    level: str = "INFO"
    access_sample_rate: float = 1.0


@dataclass(frozen=True)
class BuildInfo:
    version: str = __version__
    revision: str = "unknown"
    image_tag: str = "unknown"


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    redis: RedisSettings
    environment: str = "development"
    server: ServerSettings = field(default_factory=ServerSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    log: LogSettings = field(default_factory=LogSettings)
    build: BuildInfo = field(default_factory=BuildInfo)
    fault: Fault = field(default_factory=Fault)  # API_FAULT: test builds only (api/faults.py)
    cache_ttl: int = 60
    cache_sync_interval: float = 0.1
    active_user_window: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        r = _Reader(env)
        environment = r.choice("ENVIRONMENT", "development", ENVIRONMENTS)
        database = DatabaseSettings(
            url=_with_password(
                r.url("DATABASE_URL", ("postgresql", "postgres")), r.secret("DATABASE_PASSWORD")
            ),
            pool_min_size=r.integer("DB_POOL_MIN_SIZE", 1, low=0, high=1000),
            pool_max_size=r.integer("DB_POOL_MAX_SIZE", 10, low=1, high=1000),
            command_timeout=r.number("DB_COMMAND_TIMEOUT_SECONDS", 10.0, low=0.1),
            connect_timeout=r.number("DB_CONNECT_TIMEOUT_SECONDS", 5.0, low=0.1),
            migrate_on_start=r.boolean("MIGRATE_ON_START", True),
            migrate_wait=r.number("DB_MIGRATE_WAIT_SECONDS", 120.0, low=0.0),
        )
        if database.pool_min_size > database.pool_max_size:
            r.problems.append("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        redis = RedisSettings(
            url=_with_password(r.url("REDIS_URL", ("redis", "rediss")), r.secret("REDIS_PASSWORD")),
            max_connections=r.integer("REDIS_MAX_CONNECTIONS", 50, low=1, high=10_000),
            timeout=r.number("REDIS_TIMEOUT_SECONDS", 1.0, low=0.05),
            key_prefix=r.text("REDIS_KEY_PREFIX", "driftless:"),
        )
        settings = cls(
            environment=environment,
            database=database,
            redis=redis,
            server=ServerSettings(
                host=r.text("HOST", "0.0.0.0"),  # noqa: S104
                port=r.integer("PORT", 3000, low=1, high=65_535),
                shutdown_timeout=r.number("SHUTDOWN_TIMEOUT_SECONDS", 25.0, low=0.0),
                startup_timeout=r.number("STARTUP_TIMEOUT_SECONDS", 60.0, low=0.0),
            ),
            auth=AuthSettings(
                token_ttl=r.integer("TOKEN_TTL_SECONDS", 86_400, low=60, high=31_536_000),
                argon2_time_cost=r.integer("ARGON2_TIME_COST", 2, low=1, high=100),
                argon2_memory_kib=r.integer("ARGON2_MEMORY_KIB", 19_456, low=8, high=4_194_304),
                argon2_parallelism=r.integer("ARGON2_PARALLELISM", 1, low=1, high=64),
                argon2_max_concurrent=r.integer("ARGON2_MAX_CONCURRENT", 2, low=1, high=64),
                principal_cache_ttl=r.integer("AUTH_CACHE_TTL_SECONDS", 60, low=0, high=3600),
            ),
            limits=LimitSettings(
                per_ip=r.integer("RATE_LIMIT_PER_IP", 600, low=0),
                per_ip_window=r.integer("RATE_LIMIT_WINDOW_SECONDS", 60, low=1, high=86_400),
                sync_interval=r.integer("RATE_LIMIT_SYNC_MS", 100, low=10, high=10_000) / 1000,
                login_per_ip=r.integer("LOGIN_LIMIT_PER_IP", 20, low=0),
                login_per_ip_window=r.integer(
                    "LOGIN_LIMIT_PER_IP_WINDOW_SECONDS", 60, low=1, high=86_400
                ),
                login_failures_per_email=r.integer("LOGIN_LIMIT_PER_EMAIL", 10, low=0),
                login_per_email_window=r.integer(
                    "LOGIN_LIMIT_PER_EMAIL_WINDOW_SECONDS", 900, low=1, high=86_400
                ),
            ),
            http=HttpSettings(
                cors_allow_origins=tuple(r.items("CORS_ALLOW_ORIGINS", "")),
                hsts_max_age=r.integer("HSTS_MAX_AGE_SECONDS", 0, low=0, high=63_072_000),
                max_body_bytes=r.integer("MAX_BODY_BYTES", 1_048_576, low=1024, high=104_857_600),
                trusted_proxies=r.networks("TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES),
                country_header=r.text("COUNTRY_HEADER", "X-Country-Code").lower(),
            ),
            log=LogSettings(
                level=r.choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
                access_sample_rate=r.number("LOG_ACCESS_SAMPLE_RATE", 1.0, low=0.0, high=1.0),
            ),
            build=BuildInfo(
                version=r.text("APP_VERSION", __version__),
                revision=r.text("GIT_REVISION", "unknown"),
                image_tag=r.text("IMAGE_TAG", "unknown"),
            ),
            fault=r.parsed("API_FAULT", Fault(), parse_fault),
            cache_ttl=r.integer("CACHE_TTL_SECONDS", 60, low=1, high=86_400),
            cache_sync_interval=r.integer("CACHE_LOCAL_SYNC_MS", 100, low=0, high=10_000) / 1000,
            active_user_window=r.integer("ACTIVE_USER_WINDOW_SECONDS", 300, low=10, high=86_400),
        )
        if r.problems:
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(r.problems))
        return settings


def _with_password(url: str, password: str | None) -> str:
    """Put ``password`` (from ``*_PASSWORD`` / ``*_PASSWORD_FILE``) into ``url``."""
    if not password or not url:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class _Reader:
    """Typed access to the environment that collects every problem instead of stopping at one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _parse(self, name: str, default: T, parse: Callable[[str], T], what: str) -> T:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not {what}")
            return default

    def parsed(self, name: str, default: T, parse: Callable[[str], T]) -> T:
        """``parse(value)``; its ``ValueError`` says what is wrong, in the problem reported."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name}={raw!r}: {exc}")
            return default

    def secret(self, name: str) -> str | None:
        """``NAME`` or the content of the file ``NAME_FILE`` (one trailing newline dropped)."""
        file_name = self._raw(f"{name}_FILE")
        if file_name is not None:
            if self._raw(name) is not None:
                self.problems.append(f"set either {name} or {name}_FILE, not both")
                return None
            try:
                return Path(file_name).read_text().removesuffix("\n").removesuffix("\r")
            except OSError as exc:
                self.problems.append(f"{name}_FILE={file_name!r} cannot be read: {exc.strerror}")
                return None
        return self._raw(name)

    def url(self, name: str, schemes: tuple[str, ...]) -> str:
        value = self.secret(name)
        if value is None:
            if f"{name}_FILE" not in self.env:
                self.problems.append(f"{name} (or {name}_FILE) is required")
            return ""
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            shown = redact_url(value) if parts.scheme else "<not a URL>"
            self.problems.append(f"{name}={shown} must be a {'/'.join(schemes)}:// URL with a host")
        return value

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def choice(self, name: str, default: str, allowed: tuple[str, ...], upper: bool = False) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            self.problems.append(f"{name}={raw!r} must be one of {', '.join(allowed)}")
            return default
        return value

    def integer(self, name: str, default: int, low: int = 0, high: int = 2**31) -> int:
        value = self._parse(name, default, int, "an integer")
        if not low <= value <= high:
            self.problems.append(f"{name}={value} must be between {low} and {high}")
            return default
        return value

    def number(self, name: str, default: float, low: float = 0.0, high: float = 1e9) -> float:
        value = self._parse(name, default, float, "a number")
        if not low <= value <= high:
            self.problems.append(f"{name}={value} must be between {low} and {high}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            lowered = raw.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)

        return self._parse(name, default, parse, "a boolean (true/false)")

    def items(self, name: str, default: str) -> list[str]:
        raw = self._raw(name) or default
        return [item.strip() for item in raw.split(",") if item.strip()]

    def networks(self, name: str, default: str) -> tuple[IpNetwork, ...]:
        found: list[IpNetwork] = []
        for item in self.items(name, default):
            try:
                found.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.problems.append(f"{name}: {item!r} is not an IP address or CIDR network")
        return tuple(found)
