"""The files of a desired-state folder: the stack file (with the base files it extends, merged
as ``docker stack deploy -c base.yml -c stack.yml`` merges them), ``images.yaml`` (one image per
service, what CI's tag bump changes) and ``analysis.yaml`` (the canary analyses of each service,
``reconciler.analysis``). Each read collects its problems instead of raising, so one push gets
one complete answer."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from reconciler import yamlio
from reconciler.analysis import AnalysisFileError, AnalysisSpec, parse_analyses
from reconciler.interpolate import InterpolationError, escape_dollars, interpolate

STACK_FILES = ("stack.yml", "stack.yaml")
IMAGES_FILES = ("images.yaml", "images.yml")
ANALYSIS_FILES = ("analysis.yaml", "analysis.yml")
#: the stack file's key naming the files it extends (paths relative to its folder)
BASE_KEY = "x-driftless-base"
#: merges compose files in order, interpolated with the variables, as ``docker stack config``
#: does (``ValueError``: why not)
Merge = Callable[[Sequence[Path], Mapping[str, str]], str]


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


def _bases(folder: Path, root: Path, raw: Any, problems: list[str]) -> list[Path]:
    refs = [raw] if isinstance(raw, str) else raw
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        problems.append(f"{BASE_KEY}: expected a file name or a list of them")
        return []
    files = []
    for ref in refs:
        path = (folder / ref).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{BASE_KEY}: {ref!r} points outside the repository")
        elif not path.is_file():
            problems.append(f"{BASE_KEY}: file {ref!r} does not exist")
        else:
            files.append(path)
    return files


def _interpolated(files: Sequence[Path], variables: Mapping[str, str], problems: list[str]) -> bool:
    """Whether every file interpolates with these variables (the renderer's rules and messages:
    the CLI would take a variable that is not set for an empty one)."""
    before = len(problems)
    for path in files:
        try:
            interpolate(read_yaml(path, problems), variables, path.name)
        except InterpolationError as exc:
            problems.append(str(exc))
    return len(problems) == before


def read_stack(
    stack_path: Path,
    root: Path,
    merge: Merge | None,
    variables: Mapping[str, str],
    problems: list[str],
) -> Any:
    """The stack file's document; one that names bases (``x-driftless-base``) is merged on top
    of them by ``merge`` (the docker CLI: paths in every file are then relative to the first
    base's folder, as ``docker stack deploy`` takes them). The CLI interpolates what it merges;
    the merged document is given back with ``$`` escaped, so the renderer's own interpolation
    leaves it as it is."""
    doc = read_yaml(stack_path, problems)
    if not isinstance(doc, dict) or BASE_KEY not in doc:
        return doc
    before = len(problems)
    files = _bases(stack_path.parent, root, doc[BASE_KEY], problems)
    if len(problems) > before:
        return None
    if merge is None:
        problems.append(f"{stack_path.name}: merging it with its base needs the docker CLI")
        return None
    if not _interpolated([*files, stack_path], variables, problems):
        return None
    try:
        merged = escape_dollars(yamlio.load(merge([*files, stack_path], variables)))
    except ValueError as exc:
        problems.append(f"{stack_path.name}: cannot merge it with its base: {exc}")
        return None
    if isinstance(merged, dict):
        merged.pop(BASE_KEY, None)
        for service in (merged.get("services") or {}).values():
            if isinstance(service, dict):  # the CLI read them into environment: already merged
                service.pop("env_file", None)
    return merged


def watched_paths(folder: str, stack_text: str | None) -> list[str]:
    """The repository paths whose commits change what ``folder`` (repository-relative) deploys:
    the folder, and the folders of the bases its stack file extends (``stack_text``)."""
    paths = [folder.rstrip("/")]
    try:
        doc = yamlio.load(stack_text) if stack_text else None
    except yaml.YAMLError:
        return paths
    raw = doc.get(BASE_KEY) if isinstance(doc, dict) else None
    refs = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    for ref in refs:
        parent = os.path.normpath(os.path.join(folder, str(ref), ".."))
        if not parent.startswith("..") and parent not in paths:
            paths.append(parent)
    return paths


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
