"""The signature allow-list and the agent's own signing key, as git reads them.

git checks signatures itself: OpenPGP ones with ``gpg`` against ``$GNUPGHOME``, SSH ones with
``ssh-keygen`` against ``gpg.ssh.allowedSignersFile``. So the allow-list becomes a GnuPG home
(``<state_dir>/trust/gnupg``) holding only the allowed OpenPGP keys, with ``trust-model always``
(a key is trusted because it is on the list, not through the web of trust), and an
allowed-signers file holding the allowed SSH keys. The agent's own signing key is added to both,
so the reverts it signs pass the next pass's check.

Both are rebuilt from the configured files whenever one of them changes (a digest of their
contents is kept beside them), never edited in place. ``parse_signatures`` reads git's verdicts
(``git log --format=SIGNATURE_FORMAT``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.config import GitConfig
from reconciler.errors import ConfigError
from reconciler.signatures import Signature

_PGP_SECRET = "-----BEGIN PGP PRIVATE KEY BLOCK-----"  # noqa: S105 - a format marker


@dataclass(frozen=True)
class GitTrust:
    """What git needs to verify and sign: environment and ``-c``-style settings."""

    env: dict[str, str]
    settings: dict[str, str]
    #: the GnuPG home, whose gpg-agent is stopped after signing (None: no OpenPGP)
    gnupg_home: Path | None = None


def _run(args: Sequence[str], env: dict[str, str], what: str) -> str:
    try:
        done = subprocess.run(
            list(args), env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        # gpg and ssh-keygen name the file and the problem; they never print key material
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise ConfigError(f"{what}: {last}")
    return done.stdout


class Keyring:
    """Builds and keeps ``<state_dir>/trust`` for one git configuration."""

    def __init__(self, config: GitConfig, home: Path) -> None:
        self._config = config
        self._home = home

    @property
    def enabled(self) -> bool:
        cfg = self._config
        return cfg.signing_key_file is not None or (
            cfg.verify.allowed_signers_file is not None or cfg.verify.gpg_keys_file is not None
        )

    def _inputs(self) -> list[Path]:
        cfg = self._config
        return [
            p
            for p in (
                cfg.verify.allowed_signers_file,
                cfg.verify.gpg_keys_file,
                cfg.signing_key_file,
            )
            if p is not None
        ]

    def _digest(self) -> str:
        digest = hashlib.sha256()
        for path in self._inputs():
            try:
                digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        return digest.hexdigest()

    def prepare(self) -> GitTrust:
        """The allow-list and signing key ready for git (rebuilt if a file changed); a key
        file gpg or ssh-keygen cannot read is a ``ConfigError`` naming it."""
        if not self.enabled:
            return GitTrust({}, {"commit.gpgSign": "false"})
        digest = self._digest()
        stamp = self._home / "inputs.sha256"
        if not stamp.is_file() or stamp.read_text() != digest:
            self._build()
            stamp.write_text(digest)
        return self._trust()

    @property
    def _gnupg(self) -> Path:
        return self._home / "gnupg"

    @property
    def _signers(self) -> Path:
        return self._home / "allowed_signers"

    @property
    def _ssh_key(self) -> Path:
        return self._home / "signing_key"

    def _gpg_env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": str(self._gnupg)}

    def _build(self) -> None:
        if self._home.exists():
            self.stop_agent()
            shutil.rmtree(self._home)
        self._home.mkdir(parents=True, mode=0o700)
        self._gnupg.mkdir(mode=0o700)
        (self._gnupg / "gpg.conf").write_text("trust-model always\n")
        cfg = self._config
        lines: list[str] = []
        if cfg.verify.allowed_signers_file is not None:
            lines.append(cfg.verify.allowed_signers_file.read_text().rstrip("\n"))
        if cfg.verify.gpg_keys_file is not None:
            self._import(cfg.verify.gpg_keys_file, "git.verify.gpg_keys_file")
        key = cfg.signing_key_file
        if key is not None and _PGP_SECRET in key.read_text(errors="replace"):
            self._import(key, "git.signing_key_file")
        elif key is not None:
            shutil.copyfile(key, self._ssh_key)
            self._ssh_key.chmod(0o600)
            public = _run(
                ["ssh-keygen", "-y", "-f", str(self._ssh_key)],
                dict(os.environ),
                f"git.signing_key_file: {key} is neither an SSH private key nor an OpenPGP "
                "secret key",
            ).strip()
            lines.append(f'{cfg.author_email} namespaces="git" {public}')
        self._signers.write_text("\n".join(lines) + "\n" if lines else "")
        self.stop_agent()

    def _import(self, path: Path, key: str) -> None:
        _run(
            ["gpg", "--batch", "--quiet", "--import", str(path)],
            self._gpg_env(),
            f"{key}: gpg cannot import {path}",
        )

    def _signing_fingerprint(self) -> str | None:
        out = _run(
            ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
            self._gpg_env(),
            "git.signing_key_file: gpg cannot list it",
        )
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        return None

    def _trust(self) -> GitTrust:
        settings = {"gpg.ssh.allowedSignersFile": str(self._signers), "commit.gpgSign": "false"}
        if self._ssh_key.is_file():
            settings.update(
                {
                    "gpg.format": "ssh",
                    "user.signingKey": str(self._ssh_key),
                    "commit.gpgSign": "true",
                }
            )
        elif self._config.signing_key_file is not None:
            fingerprint = self._signing_fingerprint()
            if fingerprint is None:
                raise ConfigError(
                    f"git.signing_key_file: {self._config.signing_key_file} holds no secret key"
                )
            settings.update(
                {"gpg.format": "openpgp", "user.signingKey": fingerprint, "commit.gpgSign": "true"}
            )
        return GitTrust({"GNUPGHOME": str(self._gnupg)}, settings, self._gnupg)

    def repo_settings(self, trust: GitTrust) -> dict[str, str]:
        """What the agent's clones set in their git config: its identity and how it signs."""
        cfg = self._config
        return {"user.name": cfg.author_name, "user.email": cfg.author_email, **trust.settings}

    def stop_agent(self) -> None:
        """End the gpg-agent that signing or importing a secret key started (GnuPG leaves it
        running in the background)."""
        if not self._gnupg.is_dir():
            return
        # no gpgconf: nothing was started by it either
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                ["gpgconf", "--kill", "gpg-agent"],
                env=self._gpg_env(),
                capture_output=True,
                timeout=30,
                check=False,
            )


#: one commit's signature as git verifies it: fields split by US, records by RS
SIGNATURE_FORMAT = "%H%x1f%G?%x1f%GS%x1f%GF%x1f%GK%x1f%an <%ae>%x1f%s%x1e"


def parse_signatures(out: str) -> tuple[Signature, ...]:
    found = []
    for record in out.split("\x1e"):
        fields = record.strip("\n").split("\x1f")
        if len(fields) != 7:
            continue
        sha, status, signer, fingerprint, key, author, subject = fields
        found.append(Signature(sha, subject, author, status, signer, fingerprint or key))
    return tuple(found)


def read_signatures(
    log: Callable[..., str], head: str, since: str | None, paths: Sequence[str]
) -> tuple[Signature, ...]:
    """git's verdict on ``head`` (first) and, with ``since``, on every commit of
    ``since..head`` that touches one of ``paths``; ``log`` runs ``git log`` with its
    arguments."""
    found = parse_signatures(log("-1", f"--format={SIGNATURE_FORMAT}", head))
    if since and since != head:
        more = log(f"--format={SIGNATURE_FORMAT}", f"{since}..{head}", "--", *paths)
        found += tuple(s for s in parse_signatures(more) if s.sha != head)
    return found
