"""SOPS-encrypted secrets in a desired state (pure): which files are encrypted, in which format,
whether a file is well-formed SOPS, which entry of a decrypted document a secret takes, and the
Swarm name of its value.

A secret whose ``file:`` matches ``*.sops.*`` or ``*.enc.*`` is decrypted at render (by a
:class:`Decryptor`, :mod:`reconciler.adapters.sops`), never written anywhere: its value lives in
memory only (:class:`SealedSecret`, kept out of ``repr`` and of every serialized value) and the
rendered document names it ``{external: true, name: <stack>_<key>_<hmac12>}``. The name's hash is
an HMAC of the value keyed by the agent's age identity (:func:`secret_name`): stable across
restarts, new when the value changes (so the services using it roll), and no use to someone
guessing a short password from a public name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePath
from typing import Any, Protocol

import yaml

#: the compose extension key that names the entry of a decrypted mapping
ENTRY_KEY = "x-sops-key"
#: the label on every secret the agent creates from a SOPS file (value: the secret's key)
SOPS_LABEL = "driftless.sops"
#: Swarm refuses longer object names
MAX_NAME = 64
_HASH = 12
_LONG_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")


class Format(StrEnum):
    """sops's own formats, chosen by the file's extension as sops chooses them."""

    YAML = "yaml"
    JSON = "json"
    DOTENV = "dotenv"
    INI = "ini"
    BINARY = "binary"

    @property
    def mapping(self) -> bool:
        """Whether the decrypted document is a mapping of entries (else: the whole content)."""
        return self in (Format.YAML, Format.JSON, Format.DOTENV)


_BY_SUFFIX = {
    ".yaml": Format.YAML,
    ".yml": Format.YAML,
    ".json": Format.JSON,
    ".env": Format.DOTENV,
    ".ini": Format.INI,
}


def is_sops_file(path: PurePath | str) -> bool:
    """``secrets.sops.yaml``, ``tls.enc.pem``, ``app.sops.env``: a SOPS-encrypted file."""
    parts = PurePath(path).name.split(".")
    return len(parts) >= 3 and bool(parts[0]) and any(p in ("sops", "enc") for p in parts[1:-1])


def file_format(path: PurePath | str) -> Format:
    return _BY_SUFFIX.get(PurePath(path).suffix.lower(), Format.BINARY)


@dataclass(frozen=True)
class SealedSecret:
    """A secret decrypted from a SOPS file: its Swarm name and (in memory only) its value."""

    key: str  # the key under ``secrets:`` in the stack file
    name: str  # ``<stack>_<key>_<hmac12>``
    file: str  # the encrypted file, relative to the folder
    value: bytes = field(default=b"", repr=False, compare=False)


class Decryptor(Protocol):
    """Decrypts SOPS files in memory (``sops --decrypt`` to a pipe). Both raise
    ``ValidationError`` with a reason that names no plaintext."""

    def name_key(self) -> bytes:
        """The key of the names' HMAC: SHA-256 of the age identity file."""
        ...

    def decrypt(self, path: PurePath, fmt: Format) -> bytes:
        """The decrypted document: JSON for a mapping format, the content as is otherwise."""
        ...


def secret_name(stack: str, key: str, name_key: bytes, value: bytes) -> str:
    digest = hmac.new(name_key, value, hashlib.sha256).hexdigest()
    return f"{stack}_{key}_{digest[:_HASH]}"


def unverified_name(stack: str, key: str) -> str:
    """The name a secret gets when its file is only checked, not decrypted (``validate``)."""
    return f"{stack}_{key}_{'0' * _HASH}"


def entry_name(key: str, definition: Mapping[str, Any]) -> str:
    """The entry of the decrypted mapping a secret takes: ``x-sops-key``, else its own key."""
    return str(definition.get(ENTRY_KEY) or key)


def select(decrypted: bytes, fmt: Format, entry: str) -> bytes:
    """The secret's value: the entry ``entry`` of a decrypted mapping (as JSON, what the
    decryptor gives for a mapping format), or the whole content. ``ValueError`` names the entry,
    never a value."""
    if not fmt.mapping:
        return decrypted
    try:
        document = json.loads(decrypted)
    except ValueError:
        raise ValueError("sops gave no readable document") from None
    if not isinstance(document, dict):
        raise ValueError(f"the decrypted document is a {type(document).__name__}, not a mapping")
    if entry not in document:
        known = ", ".join(sorted(str(k) for k in document)) or "none"
        raise ValueError(f"no entry {entry!r} in it (entries: {known}); set {ENTRY_KEY}")
    value = document[entry]
    if isinstance(value, dict | list) or value is None:
        kind = "empty" if value is None else f"a {type(value).__name__}"
        raise ValueError(f"entry {entry!r} is {kind}, not a single value")
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()  # numbers and booleans as YAML/JSON write them


def _entries(text: str, fmt: Format) -> tuple[dict[str, Any] | None, set[str]]:
    """The encrypted document's metadata (``sops``) and its entries' names (in clear in sops's
    mapping formats)."""
    if fmt is Format.DOTENV:
        pairs = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
        meta = {k.removeprefix("sops_"): v for k, v in pairs.items() if k.startswith("sops_")}
        return meta or None, {k for k in pairs if not k.startswith("sops_")}
    if fmt is Format.INI:
        sealed = re.search(r"^\[sops\]", text, re.M) and re.search(r"^mac\s*=", text, re.M)
        return ({"mac": "in [sops]"} if sealed else None), set()
    document = yaml.safe_load(text) if fmt is Format.YAML else json.loads(text)
    if not isinstance(document, dict):
        return None, set()
    found = document.get("sops")
    return (found if isinstance(found, dict) else None), {str(k) for k in document if k != "sops"}


def check_encrypted(text: str, fmt: Format, entry: str | None) -> str | None:
    """Why ``text`` is not a well-formed SOPS file (no ``sops`` metadata with a MAC, or no entry
    ``entry``), or None. Reads only what sops leaves in clear: names, never values."""
    try:
        meta, entries = _entries(text, Format.JSON if fmt is Format.BINARY else fmt)
    except (ValueError, yaml.YAMLError):
        return f"not a SOPS file: it does not parse as {fmt.value} (sops --encrypt it)"
    if meta is None or not meta.get("mac"):
        return "not a SOPS file: no sops metadata with a MAC (encrypt it with sops --encrypt)"
    if fmt.mapping and entry is not None and entry not in entries:
        known = ", ".join(sorted(entries)) or "none"
        return f"no entry {entry!r} in it (entries: {known}); set {ENTRY_KEY}"
    return None


def sops_reason(stderr: str) -> str:
    """sops's reason for refusing a file, short, with its hex digests removed (sops's MAC
    mismatch message prints the MAC of the plaintext, which must not be shown)."""
    text = re.sub(r"\s*\|\s*", " ", stderr)
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    flat = " ".join(lines)
    if "MAC mismatch" in flat:
        return "MAC mismatch: the file was changed after it was encrypted (edit it with sops)"
    if "message authentication failed" in flat:
        return "a value does not decrypt (message authentication failed): the file was changed"
    if "did not match any of the recipients" in flat or "no identity matched" in flat:
        recipients = re.findall(r"\b(age1[0-9a-z]{20,}): FAILED", flat)
        listed = f" (encrypted for {', '.join(recipients)})" if recipients else ""
        return f"the agent's age key is not one of the file's recipients{listed}"
    if "metadata not found" in flat:
        return "sops metadata not found: not a SOPS-encrypted file"
    reason = next((line for line in lines if "rror" in line or "ailed" in line), "")
    reason = reason or (lines[0] if lines else "sops failed without a message")
    return _LONG_HEX.sub("…", reason)[:300]


def mask_candidates(secrets: Iterable[SealedSecret]) -> list[str]:
    """The text a masker should hide for these values: each value, and each line of a
    multi-line one (a PEM key's lines can show up alone)."""
    out: list[str] = []
    for secret in secrets:
        text = secret.value.decode(errors="replace")
        out.append(text)
        lines = [line.strip() for line in text.strip().splitlines()]
        if len(lines) > 1:
            out += [line for line in lines if len(line) >= 8 and not line.startswith("-----")]
    return out
