"""Secrets read from files, bearer tokens and webhook signatures (constant-time comparisons).

A ``SecretFile`` is read when the server starts (a missing or empty file is a ``ConfigError``)
and again when its modification time changes, so a rotated token takes effect without a
restart. Every value read is registered with the agent's ``Masker`` so that it is masked in logs,
the status page and the JSON API.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from loguru import logger

from reconciler.errors import ConfigError
from reconciler.masking import Masker


class SecretFile:
    def __init__(self, path: Path, what: str, masker: Masker) -> None:
        self._masker = masker
        self.path = path
        self.what = what
        self._value = ""
        self._mtime: float | None = None
        self._load(initial=True)

    def _load(self, *, initial: bool = False) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime == self._mtime:
                return
            value = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            if initial:
                raise ConfigError(
                    f"cannot read the {self.what} file {self.path}: {exc.strerror}"
                ) from exc
            logger.warning("cannot re-read the {} file {}: {}", self.what, self.path, exc.strerror)
            return
        if not value:
            if initial:
                raise ConfigError(f"the {self.what} file {self.path} is empty")
            logger.warning(
                "the {} file {} is empty; keeping the previous value", self.what, self.path
            )
            return
        self._masker.register(value)
        if not initial:
            logger.info("re-read the {} file {}", self.what, self.path)
        self._value, self._mtime = value, mtime

    @property
    def value(self) -> str:
        self._load()
        return self._value


def same(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality of two secrets (as bytes)."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def github_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for this body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return same(header.strip(), github_signature(secret, body))
