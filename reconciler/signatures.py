"""Which revisions may be deployed, by who signed them (pure).

git itself checks each signature (``git log --format=%G?`` against a keyring and an SSH
allowed-signers file that hold only the allow-list, see ``reconciler.adapters.keyring``); this
module reads its verdicts. Only ``G`` (a good signature by a key of the allow-list) is accepted:
``U`` is a good signature by a key git does not trust (an SSH key that is not in the allowed
signers), ``E`` one whose key is not in the keyring at all, ``N`` no signature.

Modes (``git.verify.mode``): ``off``; ``head``, the branch head's commit must be signed (what
Flux and Argo CD check); ``all``, so must every commit since the last applied revision that
touches the environment's folder, since a signed commit on top of an unsigned one would
otherwise carry the unsigned change in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class VerifyMode(StrEnum):
    OFF = "off"
    HEAD = "head"
    ALL = "all"


#: git's %G? codes other than G, as a person reads them
_WHY = {
    "N": "is not signed",
    "B": "has a bad signature (the commit was changed after it was signed)",
    "U": "is signed by a key that is not in the allow-list",
    "E": "is signed by a key that is not in the allow-list",
    "X": "has an expired signature",
    "Y": "is signed by an expired key",
    "R": "is signed by a revoked key",
}


@dataclass(frozen=True)
class Signature:
    """git's verdict on one commit's signature."""

    sha: str
    subject: str
    author: str
    #: git's %G?: G good, B bad, U untrusted key, X/Y expired, R revoked, E no key, N unsigned
    status: str
    #: who signed, as the signature says (%GS: the GPG user id or the SSH principal)
    signer: str = ""
    #: the key that made it (%GF, else %GK: a fingerprint or SSH SHA256:...)
    key: str = ""

    @property
    def good(self) -> bool:
        return self.status == "G"

    @property
    def by(self) -> str:
        """Who signed: the signer and key, or the key alone."""
        if self.signer and self.key:
            return f"{self.signer} (key {self.key})"
        return self.signer or (f"key {self.key}" if self.key else "")


def problem(signature: Signature) -> str | None:
    """Why this commit is not trusted, in a sentence naming it and its signer; None if it is."""
    if signature.good:
        return None
    why = _WHY.get(signature.status, f"has a signature git cannot verify ({signature.status})")
    signer = f": {signature.by}" if signature.status != "N" and signature.by else ""
    return (
        f"commit {signature.sha[:12]} ({signature.subject!r} by {signature.author}) {why}{signer}"
    )


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking a revision: refused (``problems``) or trusted (``signer``)."""

    problems: tuple[str, ...]
    #: who signed the head commit, when trusted
    signer: str = ""

    @property
    def trusted(self) -> bool:
        return not self.problems


def verdict(signatures: Sequence[Signature]) -> Verdict:
    """The revision is trusted when every commit checked (the head first) has a good
    signature."""
    problems = tuple(p for p in (problem(s) for s in signatures) if p is not None)
    head = signatures[0] if signatures else None
    return Verdict(problems, signer=head.by if head is not None and not problems else "")
