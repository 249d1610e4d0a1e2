"""The files of a desired-state folder besides the stack file's services: ``images.yaml`` (one
image per service, what CI's tag bump changes) and ``analysis.yaml`` (the canary analyses of
each service, ``reconciler.analysis``). Each read collects its problems instead of raising, so
one push gets one complete answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from reconciler import yamlio
from reconciler.analysis import AnalysisFileError, AnalysisSpec, parse_analyses

STACK_FILES = ("stack.yml", "stack.yaml")
IMAGES_FILES = ("images.yaml", "images.yml")
ANALYSIS_FILES = ("analysis.yaml", "analysis.yml")


def find(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yamlio.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(f"{path.name}: invalid YAML: {exc}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: cannot read: {exc}")
    return None


def read_images(folder: Path, problems: list[str]) -> dict[str, str]:
    """``service: image`` from ``images.yaml`` (none: the stack file names the images)."""
    images: dict[str, str] = {}
    path = find(folder, IMAGES_FILES)
    if path is None:
        return images
    raw = read_yaml(path, problems)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: expected 'service: image' lines")
        raw = {}
    for svc, ref in raw.items():
        if not isinstance(ref, str):
            problems.append(f"{path.name}: {svc}: image must be a string, got {ref!r} (quote it)")
            continue
        images[str(svc)] = ref.strip()
    return images


def read_analyses(
    folder: Path, services: set[str], problems: list[str]
) -> dict[str, tuple[AnalysisSpec, ...]]:
    """Each service's canary analyses from ``analysis.yaml`` (none: no analyses)."""
    path = find(folder, ANALYSIS_FILES)
    if path is None:
        return {}
    raw = read_yaml(path, problems)
    try:
        return parse_analyses(raw or {}, services)
    except AnalysisFileError as exc:
        problems.extend(f"{path.name}: {p}" for p in exc.problems)
        return {}
