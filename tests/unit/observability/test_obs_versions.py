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
    stack = files.ROOT / "desired-state" / "base" / "stack.yml"  # every environment's services
    if not stack.exists():
        return  # the stack is written elsewhere; this check applies once it exists
    services = files.load_yaml(stack).get("services", {})
    # images.yaml beside the stack wins over a service's own image: (desired-state/README.md)
    images_file = files.ROOT / "desired-state" / "production" / "images.yaml"
    images = files.load_yaml(images_file) if images_file.exists() else {}
    pinned = files.load_yaml(files.VERSIONS)["images"]
    for name, image in pinned.items():
        if name in services:
            used = images.get(name, services[name].get("image"))
            assert used == image, f"stack pins {name} differently"


def test_the_stack_mounts_observability_files_where_the_readme_says() -> None:
    """Every observability file the production stack mounts goes to the target documented in
    observability/README.md (the files' paths in the repository stay stable)."""
    stack_path = files.ROOT / "desired-state" / "base" / "stack.yml"
    if not stack_path.exists():
        return
    stack = files.load_yaml(stack_path)
    readme = (files.OBS / "README.md").read_text()
    documented = dict(
        re.findall(r"^\| `([^`]+)` \| `(/[^`]+)`", readme, flags=re.M)
    )  # repository path (relative to observability/) -> target
    assert documented, "README has no mount table"
    sources = {}
    for name, config in (stack.get("configs") or {}).items():
        file = str(config.get("file", ""))
        if "observability/" in file:
            sources[name] = file.split("observability/", 1)[1]
    for service in stack["services"].values():
        for mount in service.get("configs") or []:
            if isinstance(mount, dict) and mount.get("source") in sources:
                path = sources[mount["source"]]
                assert path in documented, f"{path} is mounted but not documented"
                assert mount["target"] == documented[path], (
                    f"{path} is mounted at {mount['target']}, README says {documented[path]}"
                )
    for path in sources.values():
        assert (files.OBS / path).exists(), f"the stack mounts a missing file: {path}"
