"""Docker image references: validation and comparison (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)


@dataclass(frozen=True)
class ImageRef:
    name: str  # repository with its registry, as written
    tag: str | None
    digest: str | None

    @property
    def registry(self) -> str:
        first, sep, _ = self.name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            return first
        return "docker.io"

    def canonical(self, *, with_digest: bool = True) -> str:
        """``nginx`` → ``docker.io/library/nginx:latest``: the form to compare references in."""
        name = self.name
        first, sep, _rest = name.partition("/")
        if not (sep and ("." in first or ":" in first or first == "localhost")):
            name = f"docker.io/{name}" if sep else f"docker.io/library/{name}"
        tag = self.tag or ("latest" if not self.digest else None)
        out = name + (f":{tag}" if tag else "")
        if with_digest and self.digest:
            out += f"@{self.digest}"
        return out

    def __str__(self) -> str:
        return (
            self.name
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def parse_image(ref: str) -> ImageRef:
    """Parse a reference; ``ValueError`` with a readable message when it is malformed."""
    match = _REFERENCE.match(ref.strip()) if isinstance(ref, str) else None
    if not match or len(match.group("name")) > 255:
        raise ValueError(f"not a valid image reference: {ref!r}")
    domain = match.group("domain")
    is_host = domain and ("." in domain or ":" in domain or domain == "localhost")
    if domain and not is_host and not re.fullmatch(_COMPONENT, domain):  # a path component
        raise ValueError(f"not a valid image reference: {ref!r} (repository names are lowercase)")
    return ImageRef(name=match.group("name"), tag=match.group("tag"), digest=match.group("digest"))


def same_image(desired: str, live: str) -> bool:
    """True when the live reference (Swarm pins ``name:tag@digest``) is the desired one. A digest
    is compared only when the desired reference gives one."""
    try:
        want, have = parse_image(desired), parse_image(live)
    except ValueError:
        return desired == live
    if want.digest:
        return want.digest == have.digest and (want.tag is None or want.tag == have.tag)
    return want.canonical(with_digest=False) == have.canonical(with_digest=False)


def display_image(live: str) -> str:
    """A live reference without its pinned digest (for diffs and the inventory)."""
    try:
        ref = parse_image(live)
    except ValueError:
        return live
    if ref.tag:
        return f"{ref.name}:{ref.tag}"
    return str(ref)
