"""Real signing keys made for a test: OpenPGP keys (``gpg``, each in its own GnuPG home, no
passphrase) and SSH keys (``ssh-keygen``), with what a developer's clone needs to sign a commit
with them and what the agent's configuration needs to allow them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _run(*args: str, env: dict[str, str] | None = None) -> str:

    return subprocess.run(
        list(args),
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
    ).stdout


@dataclass(frozen=True)
class GpgKey:
    home: Path
    fingerprint: str
    uid: str

    @classmethod
    def make(cls, root: Path, name: str, email: str, expire: str = "never") -> GpgKey:
        home = root / f"gnupg-{name.lower()}"
        home.mkdir(mode=0o700, parents=True)
        uid = f"{name} <{email}>"
        env = {"GNUPGHOME": str(home)}
        _run(
            "gpg", "--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign",
            expire, env=env,
        )  # fmt: skip
        listing = _run("gpg", "--batch", "--with-colons", "--list-secret-keys", env=env)
        fingerprint = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
        return cls(home, fingerprint, uid)

    @property
    def options(self) -> list[str]:
        return ["-c", "gpg.format=openpgp", "-c", f"user.signingKey={self.fingerprint}"]

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}

    def public(self, path: Path) -> Path:
        """The public key, armoured, written to ``path`` (for ``git.verify.gpg_keys_file``)."""
        path.write_text(_run("gpg", "--armor", "--export", self.fingerprint, env=self.env))
        return path

    def secret(self, path: Path) -> Path:
        """The secret key, armoured (for ``git.signing_key_file``)."""
        exported = _run(
            "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor",
            "--export-secret-keys", self.fingerprint, env=self.env,
        )  # fmt: skip
        path.write_text(exported)
        path.chmod(0o600)
        return path

    def stop(self) -> None:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.env, check=False)


@dataclass(frozen=True)
class SshKey:
    private: Path
    email: str

    @classmethod
    def make(cls, root: Path, name: str, email: str) -> SshKey:
        private = root / f"ssh-{name.lower()}"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", email, "-f", str(private))
        return cls(private, email)

    @property
    def options(self) -> list[str]:
        return ["-c", "gpg.format=ssh", "-c", f"user.signingKey={self.private}"]

    @property
    def env(self) -> dict[str, str]:
        return {}

    @property
    def allowed_signer(self) -> str:
        """Its line in an allowed-signers file."""
        public = self.private.with_suffix(".pub").read_text().strip()
        return f'{self.email} namespaces="git" {public}'
