"""The package's layer order, checked by a test rather than by review (like kopf's import-linter
contract): a module imports only modules of lower layers, errors.py imports nothing of the
package, and each third-party client is imported in its adapter only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "reconciler"

LAYERS: list[set[str]] = [
    {"errors", "types"},
    {"serialize", "units", "imageref", "interpolate", "yamlio", "redact", "links"},
    {"models"},
    {"status", "checks", "fields"},
    {"events", "plan", "desired", "config"},
    {"control", "ports", "state", "logs", "metrics"},
    {
        "adapters",
        "adapters.clock",
        "adapters.git",
        "adapters.http",
        "adapters.swarm",
        "adapters.metrics_http",
        "adapters.probe_proxy",
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
    {"pipeline"},
    {"record"},
    {"agent"},
    {"cli", "__init__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
#: third-party clients and the only modules that may import them
CLIENTS = {
    "docker": {"adapters.swarm"},
    "git": {"adapters.git"},
    "aiohttp": {
        "adapters.http",
        "adapters.metrics_http",
        "web.replies",
        "web.views",
        "web.actions",
        "web.hooks",
        "web.server",
        "notify.channel",
        "notify.hub",
    },
    "apscheduler": {"agent"},
    "requests": {"adapters.swarm"},
    "prometheus_client": {
        "metrics",
        "adapters.metrics_http",
        "control",
        "agent",
        "web.metrics",
        "web.views",
    },
}
#: the pure core: no I/O library at all
PURE = {
    "models",
    "status",
    "events",
    "plan",
    "fields",
    "checks",
    "units",
    "imageref",
    "interpolate",
    "serialize",
    "record",
    "errors",
    "types",
    "redact",
    "links",
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


def test_every_module_has_a_layer() -> None:
    assert set(_modules()) <= set(RANK), set(_modules()) - set(RANK)


def test_imports_only_go_down() -> None:
    problems = []
    for name, tree in _modules().items():
        for imported in _imports(tree):
            if not imported.startswith("reconciler."):
                continue
            target = imported.removeprefix("reconciler.")
            if target == "__version__":
                continue
            if RANK.get(target, -1) > RANK[name] or (name == "errors" and target):
                problems.append(f"{name} (layer {RANK[name]}) imports {target}")
    assert not problems, problems


def test_third_party_clients_live_in_their_adapter() -> None:
    problems = []
    for name, tree in _modules().items():
        for imported in _imports(tree):
            root = imported.split(".")[0]
            if root in CLIENTS and name not in CLIENTS[root]:
                problems.append(f"{name} imports {imported}")
            if name in PURE and root in {"loguru", "asyncio", "subprocess", "socket", "os"}:
                problems.append(f"pure module {name} imports {imported}")
    assert not problems, problems
