"""Images deployed by digest (pure).

A tag can be pushed again; a digest cannot. So the document given to ``docker stack deploy``
names every image as ``name:tag@sha256:…``: a service the pass changes by the digest its
registry gave for the tag at pre-flight, a service it does not change by the digest it already
runs. A tag pushed again therefore never reaches a service silently (not through a later deploy of
another service, not on a node that pulls later): it is reported (:func:`moved_tags`), and it is
rolled out only by a change in git.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.imageref import parse_image, same_image
from reconciler.models import LiveState
from reconciler.types import JSONDict


def pinned(image: str, digest: str) -> str:
    """``name:tag`` (or ``name:tag@old``) with ``digest``: ``name:tag@digest``."""
    ref = parse_image(image)
    return f"{ref.name}{f':{ref.tag}' if ref.tag else ''}@{digest}"


def digest_of(image: str) -> str | None:
    try:
        return parse_image(image).digest
    except ValueError:
        return None


def pin_document(
    doc: JSONDict, changed: tuple[str, ...], pins: Mapping[str, str], live: LiveState
) -> JSONDict:
    """``doc`` with each service's image by digest: a changed service's new image from ``pins``
    (image → digest, what pre-flight resolved), any other from what the service runs (when that
    is the same image). An image neither knows keeps its tag (Swarm resolves it)."""
    out = copy.deepcopy(doc)
    for name, service in (out.get("services") or {}).items():
        image = service.get("image")
        if not isinstance(image, str) or digest_of(image):
            continue
        digest = pins.get(image) if name in changed else None
        running = live.service(name)
        if digest is None and running is not None and same_image(image, running.fields.image):
            digest = digest_of(running.fields.image)
        if digest:
            service["image"] = pinned(image, digest)
    return out


@dataclass(frozen=True)
class MovedTag:
    """A service runs ``image`` at ``running``; its registry now gives ``current`` for the tag."""

    service: str
    image: str
    running: str
    current: str

    @property
    def message(self) -> str:
        return (
            f"{self.service}: the tag of {self.image} was pushed again (the registry now gives "
            f"{self.current[:19]}, {self.service} runs {self.running[:19]}); not rolled out: "
            "change the image in git to deploy it"
        )


def running_by_tag(desired: Mapping[str, str], live: LiveState) -> dict[str, tuple[str, str]]:
    """Service → (desired image, the digest it runs) for the services that run their desired
    image's tag at a known digest: the ones whose tag may have moved since."""
    out: dict[str, tuple[str, str]] = {}
    for name, image in desired.items():
        running = live.service(name)
        if running is None or digest_of(image) or not same_image(image, running.fields.image):
            continue
        digest = digest_of(running.fields.image)
        if digest:
            out[name] = (image, digest)
    return out


def moved_tags(
    running: Mapping[str, tuple[str, str]], current: Mapping[str, str | None]
) -> tuple[MovedTag, ...]:
    """The services whose tag the registry now resolves to another digest (``current``: image
    → digest, None when it could not be asked)."""
    moved = []
    for name, (image, digest) in sorted(running.items()):
        now = current.get(image)
        if now and now != digest:
            moved.append(MovedTag(name, image, digest, now))
    return tuple(moved)
