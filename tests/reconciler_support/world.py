"""A deployed two-service stack in the fakes of :mod:`reconciler_support.fakes`, and the agent
built on it by the composition root, as the daemon builds it (only the ports are fakes, but for
the docker CLI that merges a stack file with its base: the
state directory, the journal, rendering, planning, recording and the events are the real ones).

Each :meth:`World.sync` is one pass of a *new* agent process on the same state directory, the
same remote and the same Swarm, so a pass killed half way is resumed by the next one, as after
a restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from reconciler.adapters.compose_merge import cli_merge
from reconciler.agent import Agent
from reconciler.config import Config, load_config
from reconciler.engine import Ports
from reconciler.events import RecordingNotifier
from reconciler.masking import Masker
from reconciler.outcome import PassOutcome
from reconciler.ports import Forge
from reconciler.sopsfiles import Decryptor
from reconciler.status import Status
from reconciler.wiring import open_engine
from reconciler_support.fakes import (
    FakeChecker,
    FakeClock,
    FakeForge,
    FakeGit,
    FakeMetrics,
    FakeProbes,
    FakePromoter,
    FakeRemote,
    FakeSwarm,
)

STACK = "shop"
FOLDER = "desired-state/test"
STACK_FILE = f"{FOLDER}/stack.yml"
IMAGES_FILE = f"{FOLDER}/images.yaml"
REGISTRY = "registry.test:5000/shop"

STACK_YML = """version: "3.8"
services:
  web:
    ports:
      - {target: 8080, published: 18080, mode: host}
    networks: [back]
    deploy:
      replicas: 1
      labels:
        driftless.health.url: "http://127.0.0.1:18080/version"
        driftless.health.expect-version: "{tag}"
        driftless.health.timeout: "10s"
        driftless.health.interval: "1s"
  api:
    networks: [back]
    deploy:
      replicas: 3
      labels:
        driftless.health.url: "http://api:8080/version"
        driftless.health.network: back
        driftless.health.expect-version: "{tag}"
        driftless.health.timeout: "10s"
        driftless.health.interval: "1s"
        driftless.rollout.window: "30s"
networks:
  back: {}
"""
ANALYSIS_FILE = f"{FOLDER}/analysis.yaml"
#: the api canary's analysis: the fake Prometheus answers this query, {tag} filled in
ANALYSIS_YML = """api:
  - name: error-rate
    query: 'errors{tag="{tag}"}'
    success: result < 0.05
    interval: 5s
"""


def error_rate(tag: str) -> str:
    """The api's analysis query for the canary of this tag, as the agent sends it."""
    return f'errors{{tag="{tag}"}}'


def image(name: str, tag: str) -> str:
    return f"{REGISTRY}/{name}:{tag}"


def images_yaml(web: str = "1", api: str = "1") -> str:
    return f"web: {image('web', web)}\napi: {image('api', api)}\n"


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = FakeClock()
        self.remote = FakeRemote()
        self.swarm = FakeSwarm(self.clock)
        self.swarm.images |= {image(n, t) for n in ("web", "api") for t in ("1", "2", "3")}
        self.checker = FakeChecker(self.clock, self.swarm, STACK)
        self.probes = FakeProbes()
        self.notified = RecordingNotifier()
        self.config: Config = load_config(
            None,
            {
                "RECONCILER_STACK": STACK,
                "RECONCILER_ENVIRONMENT": "test",
                "RECONCILER_STATE_DIR": str(root / "state"),
                "RECONCILER_GIT__URL": "https://git.test/acme/shop.git",
                "RECONCILER_GIT__PATH": FOLDER,
                "RECONCILER_SYNC__PRUNE": "true",
            },
        )
        self.git = FakeGit(self.remote, self.config.checkout_dir, FOLDER)
        self.metrics = FakeMetrics()
        self.metrics.default = 0.0
        #: the forge that opens pull requests (``git.revert_via`` pull_request or auto)
        self.forge: Forge | None = None
        #: pushes promotions to their branches (``promote.path``)
        self.promoter: FakePromoter | None = None
        #: the agent's masker: adapters built outside the composition root register with it
        self.masker = Masker()
        #: decrypts SOPS files (what the composition root makes from render.sops_age_key_file)
        self.decryptor: Decryptor | None = None
        files = {STACK_FILE: STACK_YML, IMAGES_FILE: images_yaml(), ANALYSIS_FILE: ANALYSIS_YML}
        self.remote.write(files, "Deploy at 1")

    # ---------------------------------------------------------------- changing the world

    def release(self, web: str = "1", api: str = "1", subject: str = "") -> str:
        """A tag-bump commit, as CI's pull request merges it."""
        message = subject or f"Bump web to {web} and api to {api}"
        return self.remote.write({IMAGES_FILE: images_yaml(web, api)}, message)

    def protect(self, via: str = "auto", *, auto_merge: bool = False) -> FakeForge:
        """``main`` takes no direct pushes (GitHub's branch protection), and the agent proposes
        its reverts in pull requests (``git.revert_via``) on a fake GitHub."""
        self.remote.protected = True
        self.configure(git={"revert_via": via})
        forge = FakeForge(self.remote, auto_merge=auto_merge)
        self.forge = forge
        return forge

    def promote_to(self, folder: str, images: str) -> FakeForge:
        """Promote each verified revision to ``folder`` (its images.yaml: ``images``) through
        pull requests on a fake GitHub."""
        self.remote.write({f"{folder}/images.yaml": images}, f"Add {folder}")
        self.configure(promote={"path": folder, "environment": "production"})
        forge = FakeForge(self.remote)
        self.forge, self.promoter = forge, FakePromoter(self.remote)
        return forge

    def configure(self, **sections: dict[str, object]) -> None:
        """Change the agent's configuration: ``configure(sync={"dry_run": True})``."""
        for name, values in sections.items():
            self.config = replace(
                self.config, **{name: replace(getattr(self.config, name), **values)}
            )

    # ---------------------------------------------------------------- running the agent

    @contextlib.asynccontextmanager
    async def agent(self) -> AsyncIterator[Agent]:
        """A new agent process: the composition root with these fakes as its ports."""
        ports = Ports(
            self.git,
            self.swarm,
            self.checker,
            self.clock,
            lambda: self.probes,
            self.metrics,
            self.forge,
            cli_merge(),  # the real docker CLI merges a stack file with its base (no engine)
            self.promoter,
            self.decryptor,
        )
        async with open_engine(self.config, ports=ports, masker=self.masker) as engine:
            agent = Agent(engine, notifiers=(self.notified,))
            agent.open()
            try:
                yield agent
            finally:
                agent.close()

    async def sync(self) -> PassOutcome:
        async with self.agent() as agent:
            return await agent.run_pass("manual")

    # ---------------------------------------------------------------- reading it

    def live(self, service: str = "web") -> str | None:
        """The tag the service runs."""
        ref = self.swarm.image(STACK, service)
        return ref.rsplit(":", 1)[1] if ref else None

    def tasks(self, service: str = "api") -> list[str]:
        """The tag each of the service's tasks runs."""
        return self.swarm.tags(STACK, service)

    def reverts(self) -> list[str]:
        return [c.sha for c in self.remote.commits if "Driftless-Revert-Of:" in c.message]

    def status(self) -> Status:
        from reconciler.state import StateStore

        return StateStore(self.config.state_dir).load_status(STACK, "test")

    def journal_left(self) -> bool:
        return (self.config.state_dir / "journal.json").exists()

    def events(self) -> list[str]:
        return [e.kind.value for e in self.notified.events]
