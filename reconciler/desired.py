"""Render and validate a desired-state folder (``stack.yml`` + ``images.yaml`` [+ ``.env``]).

``render()`` reads only the folder (and files it references inside the repository) and returns a
``DesiredState`` or raises ``ValidationError`` listing every problem found, so one push gets one
complete answer. Nothing here talks to Docker or git. Format: ``desired-state/README.md``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.analysis import AnalysisSpec
from reconciler.attached import Names, volume_names
from reconciler.checks import health_from_labels
from reconciler.config import Config
from reconciler.desired_files import (
    STACK_FILES,
    Merge,
    find,
    read_analyses,
    read_images,
    read_stack,
)
from reconciler.desired_secrets import SealedSecrets
from reconciler.errors import ValidationError
from reconciler.fields import STAMP_LABELS, fields_from_compose
from reconciler.imageref import parse_image
from reconciler.interpolate import InterpolationError, cast_types, interpolate, parse_env_file
from reconciler.models import DesiredState, ServiceSpec
from reconciler.rollout import rollout_from_labels, waves
from reconciler.sopsfiles import Decryptor, is_sops_file
from reconciler.types import JSONDict

#: keys docker stack deploy ignores (it prints "Ignoring unsupported options")
_IGNORED_KEYS = ("build", "container_name", "depends_on", "links", "restart", "network_mode")


@dataclass(frozen=True)
class RenderOptions:
    stack: str
    environment: str
    variables: Mapping[str, str] = field(default_factory=dict)
    default_timeout: float = 60.0
    default_interval: float = 2.0
    #: files referenced by the stack (configs, secrets, env_file) must be inside this folder
    repo_root: Path | None = None
    #: merges a stack file with the bases it extends (the docker CLI); None: it cannot
    merge: Merge | None = None
    #: decrypts SOPS files (``*.sops.*``, ``*.enc.*``); ``decrypt=False`` only checks them
    decryptor: Decryptor | None = None
    decrypt: bool = True


def render_options(
    config: Config,
    repo_root: Path | None,
    *,
    merge: Merge | None = None,
    decryptor: Decryptor | None = None,
    decrypt: bool = True,
) -> RenderOptions:
    """The options the agent renders with: its stack, environment, variables and health-check
    defaults. ``repo_root``: files the stack references must stay inside it; ``merge``: how a
    stack file is merged with its base."""
    return RenderOptions(
        stack=config.stack,
        environment=config.environment,
        variables=config.render.variables,
        default_timeout=config.health.timeout,
        default_interval=config.health.interval,
        repo_root=repo_root,
        merge=merge,
        decryptor=decryptor,
        decrypt=decrypt,
    )


def canonical_hash(value: Any, length: int = 20) -> str:
    data = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:length]


class _Renderer:
    def __init__(self, folder: Path, options: RenderOptions) -> None:
        self.folder = folder.resolve()
        self.options = options
        self.root = (options.repo_root or self.folder).resolve()
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.file_hashes: dict[str, str] = {}
        self.analyses: dict[str, tuple[AnalysisSpec, ...]] = {}
        self.sealed = SealedSecrets(options, self.folder, self.problems)

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def inside_repo(self, ref: str, where: str) -> Path | None:
        path = (self.folder / ref).resolve()
        if not path.is_relative_to(self.root):
            self.fail(f"{where}: {ref!r} points outside the repository")
            return None
        if not path.is_file():
            self.fail(f"{where}: file {ref!r} does not exist")
            return None
        return path

    # ---------------------------------------------------------------- steps

    def load(self, variables: Mapping[str, str]) -> tuple[JSONDict | None, dict[str, str]]:
        stack_path = find(self.folder, STACK_FILES)
        if not self.folder.is_dir():
            self.fail(f"{self.folder}: not a directory")
            return None, {}
        if stack_path is None:
            self.fail(f"{self.folder}: no stack.yml")
            return None, {}
        doc = read_stack(stack_path, self.root, self.options.merge, variables, self.problems)
        if doc is not None and not isinstance(doc, dict):
            self.fail(f"{stack_path.name}: expected a mapping at the top, got {type(doc).__name__}")
            doc = None
        if doc is not None and not isinstance(doc.get("services"), dict):
            self.fail(f"{stack_path.name}: no services: mapping")
            doc = None
        images = read_images(self.folder, self.problems)
        return doc, images

    def variables(self) -> dict[str, str]:
        variables: dict[str, str] = {}
        env_path = self.folder / ".env"
        if env_path.is_file():
            try:
                variables.update(parse_env_file(env_path.read_text(encoding="utf-8"), ".env"))
            except (InterpolationError, OSError, UnicodeDecodeError) as exc:
                self.fail(str(exc))
        variables.update({k: str(v) for k, v in self.options.variables.items()})
        return variables

    def objects(self, doc: JSONDict, kind: str) -> tuple[dict[str, str], list[str]]:
        """Top-level configs/secrets: key → Swarm name, and the external names."""
        names: dict[str, str] = {}
        external: list[str] = []
        section = doc.get(kind) or {}
        if not isinstance(section, dict):
            self.fail(f"{kind}: expected a mapping")
            return names, external
        for key, entry in section.items():
            entry = entry or {}
            where = f"{kind}.{key}"
            if not isinstance(entry, dict):
                self.fail(f"{where}: expected a mapping")
                continue
            if entry.get("external"):
                name = str(entry.get("name") or key)
                names[key] = name
                external.append(name)
                continue
            if "file" in entry:
                path = self.inside_repo(str(entry["file"]), where)
                if path is None:
                    continue
                if kind == "secrets" and is_sops_file(path):  # named by its value, decrypted
                    names[key] = self.sealed.add(key, entry, path, where)
                    continue
                content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
                entry["file"] = str(path)
                if not entry.get("name"):
                    entry["name"] = f"{self.options.stack}_{key}_{content_hash[:8]}"
                self.file_hashes[where] = content_hash
                names[key] = str(entry["name"])
            else:
                names[key] = str(entry.get("name") or f"{self.options.stack}_{key}")
        return names, external

    def networks(self, doc: JSONDict) -> tuple[dict[str, str], list[str]]:
        names: dict[str, str] = {"default": f"{self.options.stack}_default"}
        external: list[str] = []
        section = doc.get("networks") or {}
        if not isinstance(section, dict):
            self.fail("networks: expected a mapping")
            return names, external
        for key, entry in section.items():
            entry = entry or {}
            if not isinstance(entry, dict):
                self.fail(f"networks.{key}: expected a mapping")
                continue
            if entry.get("external"):
                ext = entry["external"]
                name = str(entry.get("name") or (ext.get("name") if isinstance(ext, dict) else key))
                names[key] = name
                external.append(name)
            else:
                names[key] = str(entry.get("name") or f"{self.options.stack}_{key}")
        return names, external

    def env_files(self, name: str, service: JSONDict) -> None:
        raw = service.pop("env_file", None)
        if raw is None:
            return
        files = [raw] if isinstance(raw, str) else list(raw)
        merged: dict[str, str] = {}
        for ref in files:
            ref = ref.get("path") if isinstance(ref, dict) else ref
            path = self.inside_repo(str(ref), f"services.{name}.env_file")
            if path is None:
                continue
            try:
                merged.update(parse_env_file(path.read_text(encoding="utf-8"), str(ref)))
            except (InterpolationError, UnicodeDecodeError) as exc:
                self.fail(f"services.{name}.env_file: {exc}")
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
        merged.update({k: v for k, v in env.items() if v is not None})
        service["environment"] = merged

    def references(
        self, name: str, service: JSONDict, kind: str, known: Mapping[str, str]
    ) -> list[str]:
        used: list[str] = []
        for ref in service.get(kind) or []:
            source = ref.get("source") if isinstance(ref, dict) else ref
            if source not in known:
                self.fail(f"services.{name}.{kind}: {source!r} is not defined under {kind}:")
            else:
                used.append(known[str(source)])
        return used

    def service_networks(self, name: str, service: JSONDict, known: Mapping[str, str]) -> None:
        nets = service.get("networks") or []
        keys = list(nets) if isinstance(nets, dict | list) else []
        for key in keys:
            if key not in known:
                self.fail(f"services.{name}.networks: {key!r} is not defined under networks:")

    # ---------------------------------------------------------------- the whole render

    def render(self) -> DesiredState:
        variables = self.variables()
        doc, images = self.load(variables)
        if doc is None:
            raise self.error()
        try:
            doc = cast_types(interpolate(doc, variables), self.problems)
        except InterpolationError as exc:
            self.fail(str(exc))
            raise self.error() from None
        assert isinstance(doc, dict)
        version = doc.get("version")
        if version is not None and not str(version).startswith("3"):
            self.fail(f"version: {version!r}: docker stack deploy needs a 3.x compose file")
        services: dict[str, Any] = doc["services"]
        for svc in sorted(set(images) - set(services)):
            self.fail(f"images.yaml: {svc!r} is not a service of stack.yml")
        self.analyses = read_analyses(self.folder, set(services), self.problems)
        configs, ext_configs = self.objects(doc, "configs")
        secrets, ext_secrets = self.objects(doc, "secrets")
        networks, ext_networks = self.networks(doc)
        names = Names(
            self.options.stack, networks, secrets, configs, volume_names(doc, self.options.stack)
        )
        specs: list[ServiceSpec] = []
        for name, service in services.items():
            if not isinstance(service, dict):
                self.fail(f"services.{name}: expected a mapping")
                continue
            spec = self.service(name, service, images, names)
            if spec is not None:
                specs.append(spec)
        order = self.waves(specs)
        if self.problems:
            raise self.error()
        desired_hash = canonical_hash({"doc": doc, "files": self.file_hashes}, 64)
        return DesiredState(
            stack=self.options.stack,
            environment=self.options.environment,
            services=tuple(sorted(specs, key=lambda s: s.name)),
            document=doc,
            desired_hash=desired_hash,
            external_secrets=tuple(sorted(set(ext_secrets))),
            external_configs=tuple(sorted(set(ext_configs))),
            external_networks=tuple(sorted(set(ext_networks))),
            warnings=tuple(self.warnings),
            waves=order,
            sealed_secrets=tuple(self.sealed.secrets),
        )

    def waves(self, specs: list[ServiceSpec]) -> tuple[tuple[str, ...], ...]:
        try:
            return waves({s.name: s.rollout for s in specs})
        except ValueError as exc:
            self.fail(str(exc))
            return ()

    def service(
        self,
        name: str,
        service: JSONDict,
        images: Mapping[str, str],
        names: Names,
    ) -> ServiceSpec | None:
        where = f"services.{name}"
        for key in _IGNORED_KEYS:
            if key in service:
                self.warnings.append(f"{where}.{key} is ignored by docker stack deploy")
        image = self.service_image(name, service, images)
        labels = None if image is None else self.deploy_labels(where, service)
        if image is None or labels is None:
            return None
        self.env_files(name, service)
        used = self.references(name, service, "configs", names.configs)
        used += self.references(name, service, "secrets", names.secrets)
        self.service_networks(name, service, names.networks)
        health, problems = health_from_labels(
            name,
            labels,
            image,
            default_timeout=self.options.default_timeout,
            default_interval=self.options.default_interval,
            resolve_network=names.networks,
        )
        self.problems.extend(problems)
        try:
            fields = fields_from_compose(service, names)
        except (ValueError, KeyError, TypeError) as exc:
            self.fail(f"{where}: {exc}")
            return None
        analyses = self.analyses.get(name, ())
        checked = health is not None or bool(analyses)
        rollout, problems = rollout_from_labels(
            name, labels, mode=fields.mode, replicas=fields.replicas, checked=checked
        )
        self.problems.extend(problems)
        definition = copy.deepcopy(service)
        return ServiceSpec(
            name=name,
            image=image,
            spec_hash=canonical_hash({"service": definition, "objects": sorted(used)}),
            fields=fields,
            definition=definition,
            health=health,
            rollout=rollout,
            analyses=analyses,
        )

    def service_image(self, name: str, service: JSONDict, images: Mapping[str, str]) -> str | None:
        """The service's image (images.yaml wins over stack.yml), set on the service."""
        where = f"services.{name}"
        own = service.get("image")
        image = images.get(name, own)
        if name in images and own and own != image:
            self.warnings.append(
                f"{where}: image {own!r} in stack.yml is overridden by images.yaml"
            )
        if not image:
            self.fail(f"{where}: no image (add '{name}: <image>' to images.yaml)")
            return None
        try:
            parse_image(str(image))
        except ValueError as exc:
            self.fail(f"{where}: {exc}")
            return None
        service["image"] = str(image)
        return str(image)

    def deploy_labels(self, where: str, service: JSONDict) -> dict[str, str] | None:
        """Deploy labels as strings (the stamps refused); None if deploy is not a mapping."""
        deploy = service.get("deploy") or {}
        if not isinstance(deploy, dict):
            self.fail(f"{where}.deploy: expected a mapping")
            return None
        labels = deploy.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(str(item).partition("=")[::2] for item in labels)
        for stamp in STAMP_LABELS:
            if stamp in labels:
                self.fail(f"{where}.deploy.labels: {stamp} is set by the reconciler, remove it")
        return {str(k): str(v) for k, v in labels.items()}

    def error(self) -> ValidationError:
        count = len(self.problems)
        where = self.folder.name
        return ValidationError(
            f"desired state {where!r} is invalid: {self.problems[0]}"
            + (f" (and {count - 1} more)" if count > 1 else ""),
            problems=tuple(self.problems),
        )


def render(folder: Path, options: RenderOptions) -> DesiredState:
    """Render and validate ``folder``; raises ``ValidationError`` listing every problem."""
    return _Renderer(folder, options).render()
