"""Settings from the environment: defaults, *_FILE secrets, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.errors import SettingsError
from api.settings import Settings, redact_url

BASE = {"DATABASE_URL": "postgresql://shop@db:5432/shop", "REDIS_URL": "redis://cache:6379/0"}


def test_defaults_match_the_documented_table() -> None:
    settings = Settings.from_env(BASE)
    assert settings.environment == "development"
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 3000)
    assert settings.log.level == "INFO"
    assert settings.database.pool_max_size == 10
    assert settings.database.migrate_on_start is True
    assert settings.limits.per_ip == 600
    assert settings.http.max_body_bytes == 1_048_576
    assert settings.http.country_header == "x-country-code"
    assert settings.build.revision == "unknown"
    # argon2id at the OWASP Password Storage Cheat Sheet's parameters
    auth = settings.auth
    assert auth.argon2_memory_kib == 19_456
    assert (auth.argon2_time_cost, auth.argon2_parallelism) == (2, 1)


def test_nothing_is_read_at_import_time() -> None:
    import importlib

    import api.app

    importlib.reload(api.app)  # importing the app needs no environment and opens no connection


def test_secrets_come_from_files(tmp_path: Path) -> None:
    url_file = tmp_path / "database_url"
    url_file.write_text("postgresql://shop:s3cret@db:5432/shop\n")
    password_file = tmp_path / "redis_password"
    password_file.write_text("p@ss:word")
    env = {
        "DATABASE_URL_FILE": str(url_file),
        "REDIS_URL": "redis://cache:6379/0",
        "REDIS_PASSWORD_FILE": str(password_file),
    }
    settings = Settings.from_env(env)
    assert settings.database.url == "postgresql://shop:s3cret@db:5432/shop"
    assert settings.redis.url == "redis://:p%40ss%3Aword@cache:6379/0"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "mysql://db/shop",
        "REDIS_URL_FILE": str(tmp_path / "missing"),
        "PORT": "http",
        "ENVIRONMENT": "prod",
        "LOG_ACCESS_SAMPLE_RATE": "2",
        "TRUSTED_PROXIES": "10.0.0.0/8,not-a-network",
        "DB_POOL_MIN_SIZE": "20",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for expected in (
        "DATABASE_URL=mysql://db/shop must be a postgresql/postgres:// URL",
        "REDIS_URL_FILE=",
        "PORT='http' is not an integer",
        "ENVIRONMENT='prod' must be one of development, staging, production",
        "LOG_ACCESS_SAMPLE_RATE=2.0 must be between 0.0 and 1.0",
        "'not-a-network' is not an IP address",
        "DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE",
    ):
        assert expected in message


def test_required_urls() -> None:
    with pytest.raises(SettingsError, match=r"DATABASE_URL \(or DATABASE_URL_FILE\) is required"):
        Settings.from_env({"REDIS_URL": "redis://cache"})


def test_a_value_and_its_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "u").write_text("redis://other")
    with pytest.raises(SettingsError, match="either REDIS_URL or REDIS_URL_FILE"):
        Settings.from_env({**BASE, "REDIS_URL_FILE": str(tmp_path / "u")})


def test_errors_never_show_passwords() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DATABASE_URL": "mysql://u:hunter2@db/x", "REDIS_URL": "redis://c"})
    assert "hunter2" not in str(caught.value)
    assert redact_url("redis://:hunter2@c:6379/0") == "redis://:***@c:6379/0"
    assert redact_url("postgresql://u@db/x") == "postgresql://u@db/x"
