"""The render step for secrets read from SOPS files (``file: secrets.sops.yaml``): the file is
checked (well-formed SOPS, the entry present), then decrypted in memory by the options'
:class:`~reconciler.sopsfiles.Decryptor`, and the secret's definition in the document becomes
``{external: true, name: <stack>_<key>_<hmac12>}``: the rendered file names the value, never
holds it. Without decrypting (``reconciler validate``, which runs without keys) only the check
is done. Problems name the file and sops's reason, never a value."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from reconciler.errors import ValidationError
from reconciler.sopsfiles import (
    MAX_NAME,
    Decryptor,
    SealedSecret,
    check_encrypted,
    entry_name,
    file_format,
    secret_name,
    select,
    unverified_name,
)
from reconciler.types import JSONDict


class SopsOptions(Protocol):
    """What of the render options this step uses (``reconciler.desired.RenderOptions``)."""

    @property
    def stack(self) -> str: ...

    @property
    def decryptor(self) -> Decryptor | None: ...

    @property
    def decrypt(self) -> bool: ...


class SealedSecrets:
    """Collects the stack's SOPS secrets while a folder renders."""

    def __init__(self, options: SopsOptions, folder: Path, problems: list[str]) -> None:
        self.stack = options.stack
        self.folder = folder
        self.decryptor = options.decryptor
        self.decrypt = options.decrypt
        self.problems = problems
        self.secrets: list[SealedSecret] = []
        self._name_key: bytes | None = None
        #: each file's decrypted document (None: it did not decrypt), for this render only
        self._decrypted: dict[Path, bytes | None] = {}

    def _fail(self, message: str) -> str:
        self.problems.append(message)
        return ""

    def add(self, key: str, entry: JSONDict, path: Path, where: str) -> str:
        """The Swarm name of secret ``key`` read from ``path``; ``entry`` (its definition in the
        document) is replaced by the external reference to that name."""
        rel = path.relative_to(self.folder) if path.is_relative_to(self.folder) else path
        fmt = file_format(path)
        wanted = entry_name(key, entry) if fmt.mapping else None
        if entry.get("name"):
            return self._fail(f"{where}: a secret from a SOPS file is named by its value: no name:")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return self._fail(f"{where}: {rel}: cannot read it: {exc}")
        why = check_encrypted(text, fmt, wanted)
        if why is not None:
            return self._fail(f"{where}: {rel}: {why}")
        name = self._name(key, path, rel, wanted, where)
        if not name:
            return ""
        if len(name) > MAX_NAME:
            return self._fail(f"{where}: the secret's name {name} is longer than {MAX_NAME}")
        entry.clear()
        entry.update(external=True, name=name)
        return name

    def _name(self, key: str, path: Path, rel: Path, wanted: str | None, where: str) -> str:
        if not self.decrypt:  # checked only: named, without a value
            name = unverified_name(self.stack, key)
            self.secrets.append(SealedSecret(key=key, name=name, file=str(rel)))
            return name
        fmt = file_format(path)
        decrypted = self._decrypt(path, rel, where)
        if decrypted is None or self._name_key is None:
            return ""
        try:
            value = select(decrypted, fmt, wanted or key)
        except ValueError as exc:
            return self._fail(f"{where}: {rel}: {exc}")
        name = secret_name(self.stack, key, self._name_key, value)
        self.secrets.append(SealedSecret(key=key, name=name, file=str(rel), value=value))
        return name

    def _decrypt(self, path: Path, rel: Path, where: str) -> bytes | None:
        """The file's decrypted document, once per render however many secrets it holds; a
        refusal is reported once."""
        if path in self._decrypted:
            return self._decrypted[path]
        result: bytes | None = None
        if self.decryptor is None:
            self._fail(
                f"{where}: {rel} is SOPS-encrypted, but the agent has no age key to decrypt it "
                "(set render.sops_age_key_file)"
            )
            self._decrypted[path] = None
            return None
        try:
            if self._name_key is None:
                self._name_key = self.decryptor.name_key()
            result = self.decryptor.decrypt(path, file_format(path))
        except ValidationError as exc:
            self._fail(f"{where}: cannot decrypt {rel}: {exc.message}")
        self._decrypted[path] = result
        return result
