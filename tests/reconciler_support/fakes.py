"""Fakes at the engine's ports: a Swarm, a git remote and its checkout, HTTP checks and a clock,
in memory. They let every branch of a pass run in milliseconds; ``tests/contract/`` runs the same
tests against each fake and the real adapter, so a fake that drifts from the real thing fails.

A fake may be told to fail like the real thing fails (the engine unreachable, a deploy refused, a
rollback that does not converge, the remote unreachable, a push refused) and to be *killed*: the
named call raises :class:`Killed`, which nothing in the agent catches, as SIGKILL would end it.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from reconciler.adapters.http import HttpChecker
from reconciler.checks import Judged, judge_answer
from reconciler.errors import (
    ApplyError,
    DockerError,
    GitError,
    RevertError,
    RevisionGone,
    RollbackError,
    ValidationError,
)
from reconciler.fields import fields_from_compose
from reconciler.imageref import parse_image
from reconciler.masking import Masker
from reconciler.models import CheckResult, HealthCheck, LiveService, LiveState, RevisionInfo
from reconciler.types import JSONDict

REVERT_TRAILER = "Driftless-Revert-Of"


class Killed(BaseException):
    """The agent was killed in the middle of a call (nothing catches it, as with SIGKILL)."""


class _Hooked:
    """``on[call]`` runs when ``call`` starts, once: it may change the world (the engine goes
    away, someone pushes) or raise :class:`Killed`."""

    on: dict[str, Callable[[], None]]

    def _hook(self, call: str) -> None:
        action = self.on.pop(call, None)
        if action is not None:
            action()


def kill(call: str) -> Callable[[], None]:
    def killed() -> None:
        raise Killed(call)

    return killed


# ------------------------------------------------------------------ clock


class FakeClock:
    """Time that moves only when something sleeps (or the test says so)."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, tzinfo=UTC)) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


# ------------------------------------------------------------------ git


@dataclass(frozen=True)
class _Commit:
    sha: str
    message: str
    files: Mapping[str, str]  # the whole tree after the commit
    parent: str | None
    author: str = "Dev <dev@example.org>"
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC)

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0]


class FakeRemote:
    """A git remote with one branch, ``main``; the same methods as the tests' real ``Remote``."""

    def __init__(self) -> None:
        self.commits: list[_Commit] = []  # oldest first: the branch's history
        self.unreachable = False
        self.refuse_push = False
        self._counter = itertools.count(1)

    def _new(self, files: Mapping[str, str], message: str) -> str:
        parent = self.head()
        seed = f"{next(self._counter)}:{parent}:{message}"
        sha = hashlib.sha1(seed.encode()).hexdigest()  # noqa: S324 - an identifier, like git's
        self.commits.append(_Commit(sha, message, dict(files), parent))
        return sha

    def write(self, files: Mapping[str, str | None], message: str) -> str:
        tree = dict(self.tree())
        for path, text in files.items():
            if text is None:
                tree.pop(path, None)
            else:
                tree[path] = text
        return self._new(tree, message)

    def tree(self, ref: str | None = None) -> Mapping[str, str]:
        commit = self.commit(ref or self.head() or "")
        return commit.files if commit else {}

    def commit(self, sha: str) -> _Commit | None:
        return next((c for c in self.commits if c.sha == sha), None)

    def head(self) -> str | None:
        return self.commits[-1].sha if self.commits else None

    def log(self, fmt: str = "%H %s") -> list[str]:
        lines = []
        for c in reversed(self.commits):
            lines.append(fmt.replace("%H", c.sha).replace("%s", c.subject))
        return lines

    def message(self, ref: str = "main") -> str:
        sha = self.head() if ref == "main" else ref
        commit = self.commit(sha or "")
        assert commit is not None
        return commit.message.strip()

    def show(self, path: str, ref: str = "main") -> str:
        return self.tree(None if ref == "main" else ref)[path].strip() + "\n"

    def rewrite(self, keep: int) -> None:
        """A force-push: the branch keeps only its first ``keep`` commits."""
        del self.commits[keep:]


class FakeGit(_Hooked):
    """Implements ``reconciler.ports.GitSource`` on a :class:`FakeRemote`."""

    def __init__(self, remote: FakeRemote, workdir: Path, path: str) -> None:
        self.remote = remote
        self._workdir = workdir
        self._path = path
        self.on = {}

    @property
    def workdir(self) -> Path:
        return self._workdir

    def _reach(self, what: str) -> None:
        if self.remote.unreachable:
            raise GitError(f"cannot {what} fake://remote: Could not resolve host: remote")

    def _info(self, commit: _Commit) -> RevisionInfo:
        return RevisionInfo(commit.sha, commit.subject, commit.author, commit.at)

    def _check_out(self, commit: _Commit) -> RevisionInfo:
        if self._workdir.exists():
            shutil.rmtree(self._workdir)
        for rel, text in commit.files.items():
            target = self._workdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return self._info(commit)

    async def fetch(self) -> RevisionInfo:
        self._hook("fetch")
        self._reach("fetch main from")
        head = self.remote.commit(self.remote.head() or "")
        if head is None:
            raise GitError("cannot fetch main from fake://remote: no such branch")
        return self._check_out(head)

    async def checkout(self, sha: str) -> RevisionInfo:
        self._hook("checkout")
        self._reach("fetch main from")
        commit = self.remote.commit(sha)
        if commit is None:
            raise RevisionGone(f"revision {sha[:12]} no longer exists in fake://remote")
        return self._check_out(commit)

    def _touches(self, commit: _Commit) -> bool:
        before = self.remote.tree(commit.parent) if commit.parent else {}
        changed = {p for p in {*before, *commit.files} if before.get(p) != commit.files.get(p)}
        return any(p.startswith(self._path.rstrip("/") + "/") for p in changed)

    async def offending_commits(self, good: str | None, bad: str) -> tuple[RevisionInfo, ...]:
        shas = [c.sha for c in self.remote.commits]
        upto = self.remote.commits[: shas.index(bad) + 1] if bad in shas else []
        if good and good != bad and good in shas[: len(upto)]:
            picked = [c for c in upto[shas.index(good) + 1 :] if self._touches(c)]
        else:
            picked = [c for c in upto if self._touches(c)][-1:]
        return tuple(self._info(c) for c in reversed(picked))

    async def find_revert(self, sha: str) -> str | None:
        self._hook("find_revert")
        self._reach("fetch main from")
        return self._find(sha)

    def _find(self, sha: str) -> str | None:
        found = [c.sha for c in self.remote.commits if f"{REVERT_TRAILER}: {sha}" in c.message]
        return found[-1] if found else None

    def _undo(self, tree: dict[str, str], commits: Sequence[RevisionInfo]) -> list[str]:
        """Revert ``commits`` (newest first) in ``tree``; the files that conflict."""
        conflicts = []
        for info in commits:
            commit = self.remote.commit(info.sha)
            assert commit is not None
            before = self.remote.tree(commit.parent) if commit.parent else {}
            for path in {*before, *commit.files}:
                if before.get(path) == commit.files.get(path):
                    continue
                if tree.get(path) != commit.files.get(path):
                    conflicts.append(path)
                elif path in before:
                    tree[path] = before[path]
                else:
                    tree.pop(path, None)
        return sorted(conflicts)

    async def revert(
        self, commits: Sequence[RevisionInfo], failed: RevisionInfo, subject: str, body: str
    ) -> str | None:
        self._hook("revert")
        self._reach("fetch main from")
        done = self._find(failed.sha)
        if done:
            return done
        shas = [c.sha for c in commits]
        tree = dict(self.remote.tree())
        conflicts = self._undo(tree, commits)
        if conflicts:
            raise RevertError(
                f"cannot revert {', '.join(s[:12] for s in shas)} cleanly on top of main "
                f"(conflicts in {', '.join(conflicts)}): CONFLICT (content); nothing was pushed"
            )
        if tree == dict(self.remote.tree()):
            return None
        if self.remote.refuse_push:
            raise GitError("cannot push the revert: remote: unable to access fake://remote")
        trailers = "\n".join(f"This reverts commit {s}." for s in shas)
        message = f"{subject}\n\n{body.rstrip()}\n\n{trailers}\n\n{REVERT_TRAILER}: {failed.sha}\n"
        sha = self.remote._new(tree, message)
        self._hook("after push")
        return sha


# ------------------------------------------------------------------ swarm


@dataclass
class _Service:
    definition: JSONDict  # the compose service, as deployed (stamped)
    version: int = 1


@dataclass
class FakeSwarm(_Hooked):
    """Implements ``reconciler.ports.Swarm``: services deployed from the compose file, whose
    tasks run unless their image is one the test says crashes or never gets ready."""

    clock: FakeClock
    images: set[str] = field(default_factory=set)  # exist in their registry
    crashing: set[str] = field(default_factory=set)  # tasks exit at once
    never_ready: set[str] = field(default_factory=set)  # tasks never become ready
    objects: set[str] = field(default_factory=set)  # "secret x", "config y", "network z"
    down: bool = False  # the engine does not answer
    deploy_error: str | None = None  # docker stack deploy fails with this
    rollback_stuck: bool = False  # a rollback does not converge
    stacks: dict[str, dict[str, _Service]] = field(default_factory=dict)
    deploys: int = 0
    on: dict[str, Callable[[], None]] = field(default_factory=dict)

    def _reach(self, what: str) -> None:
        if self.down:
            raise DockerError(
                f"{what}: Docker engine unreachable: Error while fetching server API version"
            )

    def image(self, stack: str, name: str) -> str | None:
        svc = self.stacks.get(stack, {}).get(name)
        return str(svc.definition["image"]) if svc else None

    def _running(self, svc: _Service) -> int:
        image = str(svc.definition["image"])
        if image in self.crashing or image in self.never_ready or image not in self.images:
            return 0
        return int((svc.definition.get("deploy") or {}).get("replicas", 1))

    def _live(self, stack: str, name: str, svc: _Service) -> LiveService:
        labels = (svc.definition.get("deploy") or {}).get("labels") or {}
        fields = fields_from_compose(svc.definition)
        return LiveService(
            name=name,
            id=hashlib.sha1(f"{stack}_{name}".encode()).hexdigest()[:25],  # noqa: S324
            version=svc.version,
            fields=fields,
            spec_hash=labels.get("driftless.spec-hash"),
            revision=labels.get("driftless.revision"),
            replicas_running=self._running(svc),
            replicas_desired=fields.replicas or 0,
            spec={"Name": f"{stack}_{name}", "compose": copy.deepcopy(svc.definition)},
        )

    async def live_state(self, stack: str) -> LiveState:
        self._hook("live_state")
        self._reach("reading the live services")
        services = self.stacks.get(stack, {})
        live = [self._live(stack, n, s) for n, s in sorted(services.items())]
        return LiveState(stack=stack, services=tuple(live))

    async def image_exists(self, image: str) -> bool:
        self._hook("image_exists")
        self._reach(f"checking image {image}")
        return image in self.images

    async def missing_objects(
        self, secrets: Sequence[str], configs: Sequence[str], networks: Sequence[str]
    ) -> list[str]:
        self._reach("checking secrets, configs and networks")
        wanted = [f"secret {s}" for s in secrets] + [f"config {c}" for c in configs]
        wanted += [f"network {n}" for n in networks]
        return [w for w in wanted if w not in self.objects]

    async def validate_compose(self, path: Path) -> None:
        self._hook("validate_compose")
        self._reach("docker stack config")
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
            raise ValidationError("docker stack config rejects the rendered stack: no services")

    async def deploy(self, stack: str, compose: Path, *, prune: bool, time_limit: float) -> str:
        self._hook("deploy")
        if self.down or self.deploy_error:
            why = self.deploy_error or "Cannot connect to the Docker daemon"
            raise ApplyError(f"docker stack deploy failed: {why}", detail=why)
        services = yaml.safe_load(compose.read_text())["services"]
        current = self.stacks.setdefault(stack, {})
        for name, definition in services.items():
            old = current.get(name)
            if old is None:
                current[name] = _Service(copy.deepcopy(definition))
            elif old.definition != definition:
                current[name] = _Service(copy.deepcopy(definition), old.version + 1)
        if prune:
            for name in set(current) - set(services):
                del current[name]
        self.deploys += 1
        return f"Updating service {stack}_" + f", {stack}_".join(sorted(services))

    def _progress(self, stack: str, name: str, time_limit: float) -> CheckResult:
        svc = self.stacks.get(stack, {}).get(name)
        if svc is None:
            return CheckResult(name, ok=False, kind="swarm", output="service does not exist")
        image = str(svc.definition["image"])
        if image in self.crashing:
            output = "3 tasks of the new spec failed: task: non-zero exit (1)"
            return CheckResult(name, ok=False, kind="swarm", output=output)
        want = self._running(svc) or int((svc.definition.get("deploy") or {}).get("replicas", 1))
        if image in self.never_ready or image not in self.images:
            output = f"not converged after {time_limit:.0f}s: 0/{want} tasks running"
            return CheckResult(name, ok=False, kind="swarm", output=output)
        output = f"{want}/{want} tasks running the new spec"
        return CheckResult(name, ok=True, kind="swarm", output=output)

    async def wait_converged(
        self,
        stack: str,
        services: Sequence[str],
        *,
        since: datetime,
        time_limit: float,
        expected_gone: Sequence[str] = (),
    ) -> dict[str, CheckResult]:
        self._hook("wait_converged")
        self._reach("watching")
        results = {n: self._progress(stack, n, time_limit) for n in services}
        if any(r.output.startswith("not converged") for r in results.values()):
            await self.clock.sleep(time_limit)
        for name in expected_gone:
            gone = name not in self.stacks.get(stack, {})
            output = "removed" if gone else f"not converged after {time_limit:.0f}s: pending"
            results[name] = CheckResult(name, ok=gone, kind="swarm", output=output)
        return results

    async def restore(
        self, stack: str, previous: Mapping[str, JSONDict | None], *, time_limit: float
    ) -> None:
        self._hook("restore")
        self._reach("rolling back")
        current = self.stacks.setdefault(stack, {})
        for name, spec in previous.items():
            if spec is None:
                current.pop(name, None)
            else:
                old = current.get(name)
                version = old.version + 1 if old else 1
                current[name] = _Service(copy.deepcopy(spec["compose"]), version)
        if self.rollback_stuck:
            raise RollbackError(
                "rollback did not converge: "
                + "; ".join(f"{n}: not converged after {time_limit:.0f}s" for n in previous)
            )


# ------------------------------------------------------------------ HTTP checks


class FakeProbes:
    """Implements ``reconciler.ports.ProxyProvider``: a probe that reaches every network."""

    def __init__(self) -> None:
        self.networks: list[str] = []
        self.closed = 0

    async def proxy_for(self, network: str) -> str:
        self.networks.append(network)
        return "http://127.0.0.1:1"

    async def close(self) -> None:
        self.closed += 1


class FakeChecker(HttpChecker):
    """The real checker's retries, timeouts and soak on a fake network: an answer per URL
    (``answers``), else the answer of the image the checked service runs in ``swarm``: by
    default ``200 {"status": "ok", "version": <tag>}``, or what ``by_image`` says."""

    def __init__(self, clock: FakeClock, swarm: FakeSwarm | None = None, stack: str = "") -> None:
        super().__init__(clock, Masker(), request_timeout=5.0)
        self.swarm = swarm
        self.stack = stack
        self.answers: dict[str, list[tuple[int | None, str]]] = {}
        self.by_image: dict[str, tuple[int, str]] = {}
        self.requests: list[str] = []

    def serve(self, url: str, *answers: tuple[int | None, str]) -> None:
        """Answer ``url`` with these, in turn (the last one from then on); ``None``: no answer."""
        self.answers[url] = list(answers)

    def _answer(self, check: HealthCheck) -> tuple[int | None, str]:
        if check.url in self.answers:
            queue = self.answers[check.url]
            return queue.pop(0) if len(queue) > 1 else queue[0]
        image = (
            self.swarm.image(self.stack, check.service) if self.swarm and check.service else None
        )
        if image is None:
            return None, "ClientConnectorError: Cannot connect to host"
        if image in self.by_image:
            return self.by_image[image]
        return 200, json.dumps({"status": "ok", "version": parse_image(image).tag or "latest"})

    async def run(self, checks, proxies=None):  # type: ignore[no-untyped-def]
        return [await self._run(None, check, proxies) for check in checks]

    async def once(self, checks, proxies=None):  # type: ignore[no-untyped-def]
        return [await self._once(None, check, proxies) for check in checks]  # type: ignore[arg-type]

    async def _attempt(self, session, check, proxy):  # type: ignore[no-untyped-def]
        self.requests.append(check.url)
        status, body = self._answer(check)
        if status is None:
            return Judged(False, body), None
        return judge_answer(check, status, body), status
