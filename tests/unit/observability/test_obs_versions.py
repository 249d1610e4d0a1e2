"""The pinned observability images agree everywhere they are written down."""

from __future__ import annotations

import re

from obs_support import files


def test_interfaces_table_matches_versions_file() -> None:
    pinned = files.load_yaml(files.VERSIONS)["images"]
    text = files.INTERFACES.read_text().split("## Observability image versions", 1)[1]
    table = dict(re.findall(r"^\| `([a-z-]+)` \| `([^`]+)` \|$", text, flags=re.M))
    assert table == pinned


def test_every_pin_is_an_exact_tag() -> None:
    for service, image in files.load_yaml(files.VERSIONS)["images"].items():
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{service}: {image} is not an exact version"


def test_the_production_stack_uses_the_pinned_images() -> None:
    stack = files.ROOT / "desired-state" / "production" / "stack.yml"
    if not stack.exists():
        return  # the stack is written elsewhere; this check applies once it exists
    services = files.load_yaml(stack).get("services", {})
    # images.yaml beside the stack wins over a service's own image: (desired-state/README.md)
    images_file = stack.parent / "images.yaml"
    images = files.load_yaml(images_file) if images_file.exists() else {}
    pinned = files.load_yaml(files.VERSIONS)["images"]
    for name, image in pinned.items():
        if name in services:
            used = images.get(name, services[name].get("image"))
            assert used == image, f"stack pins {name} differently"
