"""The package's layer order, checked by a test rather than by review (like kopf's import-linter
contract): a module imports only modules of its own or lower layers, errors.py imports nothing of
the package, each third-party client is imported in its adapter only, and the pure core does no
I/O, not even through what it imports (the check follows imports transitively)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "reconciler"

LAYERS: list[set[str]] = [
    {"errors", "types"},
    {
        "serialize",
        "units",
        "imageref",
        "interpolate",
        "yamlio",
        "redact",
        "links",
        "faults",
        "cron",
        "sopsfiles",
    },
    {"attached"},
    {"forges"},
    {"rollout", "analysis", "models", "masking", "signatures", "windows", "lease", "placement"},
    {"progress", "status", "checks", "fields", "waves", "journal", "task_views"},
    # values built from those, and the pure decisions over them
    {
        "events",
        "pinning",
        "promotion",
        "plan",
        "outcome",
        "convergence",
        "port_holders",
        "config_values",
        "config_sections",
        "config",
        "desired",
        "desired_files",
        "desired_secrets",
        "documents",
    },
    {"decisions", "record", "canary", "recovery"},
    {"control", "ports", "state", "store", "leadership", "logs", "metrics"},
    {
        "adapters",
        "adapters.clock",
        "adapters.git",
        "adapters.keyring",
        "adapters.compose_merge",
        "adapters.git_promote",
        "adapters.git_env",
        "adapters.forge",
        "adapters.http",
        "adapters.swarm",
        "adapters.swarm_secrets",
        "adapters.swarm_state",
        "adapters.swarm_store",
        "adapters.swarm_objects",
        "adapters.port_holders",
        "adapters.swarm_resume",
        "adapters.sdk_errors",
        "adapters.sops",
        "adapters.stack_cli",
        "adapters.probes",
        "adapters.probe_proxy",
        "adapters.folder",
        "adapters.agent_api",
        "adapters.prometheus",
    },
    {
        # the HTTP server and the notifications: Components that see the agent only through
        # control.AgentControl
        "web",
        "web.settings",
        "web.html",
        "web.auth",
        "web.health",
        "web.pieces",
        "web.headline",
        "web.summary",
        "web.services",
        "web.nodes",
        "web.rollout",
        "web.environments",
        "web.windows",
        "web.history",
        "web.page",
        "web.metrics",
        "web.replies",
        "web.views",
        "web.actions",
        "web.hooks",
        "web.server",
        "notify",
        "notify.message",
        "notify.formats",
        "notify.channel",
        "notify.hub",
    },
    # the pass: its context, each phase, how it ends, the sequence
    {"engine.context"},
    {
        "engine.fetch",
        "engine.render",
        "engine.planning",
        "engine.preflight",
        "engine.apply",
        "engine.verify",
        "engine.rollback",
        "engine.revert",
        "engine.canary",
        "engine.recover",
        "engine.trust",
        "engine.promote",
        "engine.secrets",
    },
    {"engine.finish", "engine.rollout"},
    {"engine.run", "engine.preview"},
    {"engine"},
    {"wiring"},
    {"agent"},
    {"daemon"},
    {"cli.parser", "cli.setup"},
    {"cli.status", "cli.control", "cli.commands"},
    {"cli", "cli.__main__", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
#: third-party clients and the only modules that may import them
CLIENTS = {
    "docker": {
        "adapters.swarm",
        "adapters.swarm_secrets",
        "adapters.swarm_state",
        "adapters.port_holders",
        "adapters.sdk_errors",
    },
    "git": {"adapters.git", "adapters.git_promote"},
    "aiohttp": {
        "web.environments",
        "adapters.forge",
        "adapters.http",
        "adapters.agent_api",
        "adapters.prometheus",
        "web.replies",
        "web.views",
        "web.actions",
        "web.hooks",
        "web.server",
        "notify.channel",
        "notify.hub",
    },
    # the daemon's scheduler; cron's date arithmetic (CronTrigger, given its time zone and the
    # moment to start from: no clock, no scheduler) for the sync windows
    "apscheduler": {"daemon", "cron"},
    "requests": {"adapters.swarm", "adapters.swarm_state"},
    "prometheus_client": {
        "metrics",
        "control",
        "agent",
        "web.metrics",
        "web.views",
    },
}
#: the pure core: no I/O, directly or through anything it imports
PURE = {
    "errors",
    "types",
    "serialize",
    "units",
    "imageref",
    "interpolate",
    "redact",
    "links",
    "faults",
    "sopsfiles",
    "attached",
    "signatures",
    "pinning",
    "promotion",
    "forges",
    "models",
    "masking",
    "rollout",
    "documents",
    "status",
    "checks",
    "fields",
    "journal",
    "waves",
    "progress",
    "events",
    "plan",
    "outcome",
    "convergence",
    "task_views",
    "analysis",
    "decisions",
    "record",
    "canary",
    "recovery",
    "windows",
    "lease",
    "placement",
}
#: what a pure module may not import, directly or transitively
IO = {
    "loguru",
    "asyncio",
    "subprocess",
    "socket",
    "os",
    "shutil",
    "fcntl",
    "tempfile",
    "aiohttp",
    "docker",
    "git",
    "requests",
    "apscheduler",
    "prometheus_client",
}


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__") or "__init__"
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "reconciler":
                found.update(f"reconciler.{a.name}" for a in node.names)
            else:
                found.add(node.module)
    return found


def _internal(imported: str, modules: set[str]) -> str | None:
    """The package module an import names (``reconciler.engine.run`` → ``engine.run``)."""
    if not imported.startswith("reconciler."):
        return None
    target = imported.removeprefix("reconciler.")
    return target if target in modules else None


def test_every_module_has_a_layer() -> None:
    assert set(_modules()) <= set(RANK), set(_modules()) - set(RANK)


def test_imports_only_go_down() -> None:
    problems = []
    modules = _modules()
    for name, tree in modules.items():
        for imported in _imports(tree):
            target = _internal(imported, set(modules))
            if target is None:
                continue
            if RANK[target] > RANK[name] or (name == "errors" and target):
                problems.append(f"{name} (layer {RANK[name]}) imports {target}")
    assert not problems, problems


def test_third_party_clients_live_in_their_adapter() -> None:
    problems = []
    for name, tree in _modules().items():
        for imported in _imports(tree):
            root = imported.split(".")[0]
            if root in CLIENTS and name not in CLIENTS[root]:
                problems.append(f"{name} imports {imported}")
    assert not problems, problems


def _closure(name: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph[current])
    return seen


def test_the_pure_core_does_no_io_even_through_its_imports() -> None:
    modules = _modules()
    graph = {
        name: {t for i in _imports(tree) if (t := _internal(i, set(modules))) is not None}
        for name, tree in modules.items()
    }
    problems = []
    for name in sorted(PURE):
        for reached in sorted(_closure(name, graph)):
            if reached not in PURE:
                problems.append(f"pure {name} reaches {reached}, which is not pure")
            for imported in _imports(modules[reached]):
                if imported.split(".")[0] in IO:
                    problems.append(f"pure {name} reaches {reached}, which imports {imported}")
    assert not problems, sorted(set(problems))
