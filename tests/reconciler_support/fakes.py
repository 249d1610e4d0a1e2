"""Fakes at the engine's ports: a Swarm, a git remote and its checkout, HTTP checks, a clock and
a forge that holds pull requests, in memory. They let every branch of a pass run in
milliseconds; ``tests/contract/`` runs the same tests against each fake and the real adapter, so
a fake that drifts from the real thing fails.

A fake may be told to fail like the real thing fails (the engine unreachable, a registry down, a
deploy refused, a rollback that does not converge, the remote unreachable or answering with an
error, a push refused, a branch protected as GitHub protects it) and to be *killed*: the named
call raises :class:`Killed`, which nothing in the agent catches, as SIGKILL would end it. Their
errors are read from the same words, by the same ``reconciler.faults``, as the adapters' are.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePath
from urllib.parse import urlsplit

import yaml

from reconciler.adapters.http import HttpChecker
from reconciler.analysis import Answer
from reconciler.checks import Judged, judge_answer
from reconciler.documents import HOLD
from reconciler.errors import (
    ApplyError,
    DockerError,
    ForgeError,
    RevertError,
    RevisionGone,
    RollbackError,
    ValidationError,
)
from reconciler.faults import docker_error, docker_fault, git_error, protected_error
from reconciler.fields import fields_from_compose
from reconciler.forges import Proposal, Request
from reconciler.imageref import parse_image
from reconciler.lease import Lease
from reconciler.masking import Masker
from reconciler.models import CheckResult, HealthCheck, LiveService, LiveState, RevisionInfo
from reconciler.placement import Node
from reconciler.signatures import Signature
from reconciler.sopsfiles import SOPS_LABEL, Format, SealedSecret
from reconciler.task_views import ServiceTasks, TaskView
from reconciler.types import JSONDict

REVERT_TRAILER = "Driftless-Revert-Of"
#: what GitHub answers a push to a protected branch (git's stderr)
PROTECTED = """remote: error: GH006: Protected branch update failed for refs/heads/main.
remote: error: Changes must be made through a pull request.
To github.com:acme/shop.git
 ! [remote rejected] HEAD -> main (protected branch hook declined)
error: failed to push some refs to 'github.com:acme/shop.git'"""


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
        #: main takes no direct pushes (branch protection): only a merged pull request
        self.protected = False
        #: other branches: the revert branches pushed for pull requests
        self.branches: dict[str, _Commit] = {}
        #: git's stderr for every fetch and push (a remote answering with an error), or ""
        self.failing = ""
        #: commits with a good signature by an allowed key: sha -> signer (others unsigned)
        self.signed: dict[str, str] = {}
        #: who signs the reverts the agent pushes ("": they are unsigned)
        self.revert_signer = ""
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
        """A commit of ``main``, or the head of another branch."""
        found = next((c for c in self.commits if c.sha == sha), None)
        return found or next((c for c in self.branches.values() if c.sha == sha), None)

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

    def merge(self, branch: str) -> str:
        """The forge merges a pull request (fast-forward), its branch deleted."""
        commit = self.branches.pop(branch)
        assert commit.parent == self.head(), "the fake merges fast-forwards only"
        self.commits.append(commit)
        return commit.sha


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
            raise git_error(
                f"cannot {what} fake://remote",
                "fatal: unable to access 'fake://remote/': Could not resolve host: remote",
            )
        if self.remote.failing:
            raise git_error(f"cannot {what} fake://remote", self.remote.failing)

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
            raise git_error(
                "cannot fetch main from fake://remote",
                "fatal: couldn't find remote ref refs/heads/main",
            )
        return self._check_out(head)

    async def checkout(self, sha: str) -> RevisionInfo:
        self._hook("checkout")
        self._reach("fetch main from")
        commit = self.remote.commit(sha)
        if commit is None:
            raise RevisionGone(f"revision {sha[:12]} no longer exists in fake://remote")
        return self._check_out(commit)

    def _touches(self, commit: _Commit, also: Sequence[str] = ()) -> bool:
        before = self.remote.tree(commit.parent) if commit.parent else {}
        changed = {p for p in {*before, *commit.files} if before.get(p) != commit.files.get(p)}
        folders = [f.rstrip("/") + "/" for f in (self._path, *also)]
        return any(p.startswith(tuple(folders)) for p in changed)

    async def offending_commits(
        self, good: str | None, bad: str, *, also: Sequence[str] = ()
    ) -> tuple[RevisionInfo, ...]:
        shas = [c.sha for c in self.remote.commits]
        upto = self.remote.commits[: shas.index(bad) + 1] if bad in shas else []
        if good and good != bad and good in shas[: len(upto)]:
            picked = [c for c in upto[shas.index(good) + 1 :] if self._touches(c, also)]
        else:
            picked = [c for c in upto if self._touches(c, also)][-1:]
        return tuple(self._info(c) for c in reversed(picked))

    async def signatures(
        self, since: str | None, head: str, *, every: bool, also: Sequence[str] = ()
    ) -> tuple[Signature, ...]:
        self._hook("signatures")
        shas = [c.sha for c in self.remote.commits]
        picked = [head]
        if every and since and since in shas and head in shas:
            after = self.remote.commits[shas.index(since) + 1 : shas.index(head)]
            picked += [c.sha for c in reversed(after) if self._touches(c, also)]
        found = []
        for sha in picked:
            commit = self.remote.commit(sha)
            assert commit is not None
            signer = self.remote.signed.get(sha, "")
            status = "G" if signer else "N"
            found.append(Signature(sha, commit.subject, commit.author, status, signer))
        return tuple(found)

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
            raise git_error("cannot push the revert", "remote: unable to access fake://remote")
        protected = protected_error("main", PROTECTED) if self.remote.protected else None
        if protected is not None:
            raise protected
        sha = self.remote._new(tree, _message(shas, failed.sha, subject, body))
        if self.remote.revert_signer:
            self.remote.signed[sha] = self.remote.revert_signer
        self._hook("after push")
        return sha

    async def propose(
        self,
        commits: Sequence[RevisionInfo],
        failed: RevisionInfo,
        subject: str,
        body: str,
        branch: str,
    ) -> str | None:
        self._hook("propose")
        self._reach("fetch main from")
        pushed = self.remote.branches.get(branch)
        if pushed is not None:
            if f"{REVERT_TRAILER}: {failed.sha}" not in pushed.message:
                raise RevertError(f"branch {branch} exists without the revert of {failed.short}")
            return pushed.sha
        tree = dict(self.remote.tree())
        conflicts = self._undo(tree, commits)
        if conflicts:
            raise RevertError(f"cannot revert cleanly (conflicts in {', '.join(conflicts)})")
        if tree == dict(self.remote.tree()):
            return None
        message = _message([c.sha for c in commits], failed.sha, subject, body)
        seed = f"{branch}:{self.remote.head()}:{message}"
        sha = hashlib.sha1(seed.encode()).hexdigest()  # noqa: S324 - an identifier, like git's
        self.remote.branches[branch] = _Commit(sha, message, tree, self.remote.head())
        self._hook("after propose")
        return sha


def _message(shas: Sequence[str], failed: str, subject: str, body: str) -> str:
    trailers = "\n".join(f"This reverts commit {s}." for s in shas)
    return f"{subject}\n\n{body.rstrip()}\n\n{trailers}\n\n{REVERT_TRAILER}: {failed}\n"


# ------------------------------------------------------------------ forge


@dataclass
class FakeRequest:
    branch: str
    base: str
    title: str
    body: str
    request: Request
    auto_merge: bool = False


class FakeForge(_Hooked):
    """Implements ``reconciler.ports.Forge``: the pull requests GitHub holds, in memory. The
    real adapter is tested against a stand-in GitHub/GitLab on loopback
    (``reconciler_support.forgeserver``)."""

    def __init__(self, remote: FakeRemote, *, auto_merge: bool = False) -> None:
        self.remote = remote
        self.opened: list[FakeRequest] = []
        self.auto_merge = auto_merge
        #: the forge's answer to every request: an error to raise (ForgeError, ForgeUnavailable)
        self.failing: Exception | None = None
        self.on = {}

    def open_for(self, branch: str) -> FakeRequest | None:
        """The open request from ``branch`` (its branch still there: not merged)."""
        found = [r for r in self.opened if r.branch == branch and branch in self.remote.branches]
        return found[-1] if found else None

    async def propose(self, branch: str, base: str, title: str, body: str) -> Proposal:
        self._hook("propose")
        if self.failing is not None:
            raise self.failing
        found = self.open_for(branch)
        opened = found is None
        if found is None:
            if branch not in self.remote.branches:
                raise ForgeError(f"cannot open the pull request for {branch}: head invalid")
            number = len(self.opened) + 1
            url = f"https://github.test/acme/shop/pull/{number}"
            found = FakeRequest(branch, base, title, body, Request(number, url, f"PR_{number}"))
            self.opened.append(found)
            self._hook("after open")
        found.auto_merge = found.auto_merge or self.auto_merge
        merging = "auto-merge requested" if self.auto_merge else ""
        return Proposal(found.request, opened, merging)


class FakePromoter(_Hooked):
    """Implements ``reconciler.ports.Promoter`` on a :class:`FakeRemote`: the promotion's commit
    on top of the branch, on a branch of its own."""

    def __init__(self, remote: FakeRemote) -> None:
        self.remote = remote
        self.on = {}

    async def push_branch(
        self, branch: str, files: Mapping[str, str], message: str, sha: str
    ) -> str:
        self._hook("push_branch")
        if self.remote.unreachable:
            raise git_error(f"cannot push the promotion to branch {branch}", "Could not resolve")
        found = self.remote.branches.get(branch)
        if found is not None and f"Driftless-Promotion-Of: {sha}" in found.message:
            return found.sha
        tree = {**self.remote.tree(), **files}
        seed = f"promotion:{branch}:{len(self.remote.branches)}"
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), message, tree, self.remote.head())  # noqa: S324
        self.remote.branches[branch] = commit
        return commit.sha


# ------------------------------------------------------------------ swarm


def _tagged(image: object) -> str:
    """An image reference without the digest the agent pins it to."""
    return str(image).split("@", 1)[0]


def _template(definition: JSONDict) -> JSONDict:
    """What a task runs: the service's definition but its ``deploy`` section."""
    return {k: v for k, v in definition.items() if k != "deploy"}


@dataclass
class _Task:
    slot: int
    template: JSONDict
    ip: str
    started: datetime


@dataclass
class _Service:
    definition: JSONDict  # the compose service, as deployed (stamped)
    version: int = 1
    previous: JSONDict | None = None  # the definition before its last update (PreviousSpec)
    tasks: list[_Task] = field(default_factory=list)
    update_state: str | None = None
    update_started: datetime | None = None


@dataclass
class _Secret:
    data: bytes = field(repr=False)
    labels: dict[str, str]


def _secret_names(stack: str, doc: JSONDict, definition: JSONDict) -> list[str]:
    """The Swarm names of the secrets a service of the compose document ``doc`` mounts."""
    top = doc.get("secrets") or {}
    names = []
    for ref in definition.get("secrets") or []:
        key = str(ref.get("source") if isinstance(ref, dict) else ref)
        names.append(str((top.get(key) or {}).get("name") or f"{stack}_{key}"))
    return sorted(names)


#: what a task says when the engine could not start it (Swarm's overlay, moby/moby#24486)
UNSTARTABLE = "starting container failed: Address already in use"


@dataclass
class FakeSwarm(_Hooked):
    """Implements ``reconciler.ports.Swarm``: services deployed from the compose file, their
    tasks replaced by a rolling update (held after ``parallelism`` tasks when the update's
    ``delay`` is the canary's hold), and running unless their image is one the test says
    crashes, crashes after a while, or never gets ready."""

    clock: FakeClock
    images: set[str] = field(default_factory=set)  # exist in their registry
    crashing: set[str] = field(default_factory=set)  # tasks exit at once
    crash_after: dict[str, float] = field(default_factory=dict)  # tasks exit after N seconds
    never_ready: set[str] = field(default_factory=set)  # tasks never become ready
    #: the engine cannot start their tasks, for trouble of its own (an overlay address held)
    unstartable: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)  # "secret x", "config y", "network z"
    #: the Swarm's nodes (one manager, as on one VM)
    swarm_nodes: list[Node] = field(
        default_factory=lambda: [Node("n1", "vm-1", "manager", {"driftless.db": "true"})]
    )
    #: the secrets the agent created (name → data and labels)
    secrets: dict[str, _Secret] = field(default_factory=dict)
    #: the engine refuses to create secrets with these words
    secret_error: str = ""
    down: bool = False  # the engine does not answer
    #: the engine's words when it asks the images' registry (pre-flight, deploy), or "": a
    #: registry that is down or failing
    registry_error: str = ""
    #: tags pushed again since (image → the seed of its new digest)
    repushed: dict[str, str] = field(default_factory=dict)
    deploy_error: str | None = None  # docker stack deploy fails with this
    #: the next deploys fail for the engine's sake, as the adapter says once its tries are over
    deploy_races: int = 0
    rollback_stuck: bool = False  # a rollback does not converge
    stacks: dict[str, dict[str, _Service]] = field(default_factory=dict)
    deploys: int = 0
    on: dict[str, Callable[[], None]] = field(default_factory=dict)
    #: each deploy's services and their images, in order
    deployed: list[dict[str, str]] = field(default_factory=list)
    #: the most tasks each image ever ran at once
    peak: dict[str, int] = field(default_factory=dict)
    _addresses: Iterator[int] = field(default_factory=lambda: itertools.count(2))
    #: Swarm's version index: one counter for every object, it only grows
    _index: Iterator[int] = field(default_factory=lambda: itertools.count(10))

    def _reach(self, what: str) -> None:
        if self.down:
            text = "Error while fetching server API version: ('Connection aborted.', ...)"
            raise docker_error(what, text, docker_fault(text))

    def image(self, stack: str, name: str) -> str | None:
        """The image the service runs, as git names it (without the digest it is pinned to)."""
        svc = self.stacks.get(stack, {}).get(name)
        return _tagged(svc.definition["image"]) if svc else None

    def pinned_image(self, stack: str, name: str) -> str | None:
        """The image as deployed: ``name:tag@digest`` when the agent pinned it."""
        svc = self.stacks.get(stack, {}).get(name)
        return str(svc.definition["image"]) if svc else None

    def image_at(self, ip: str) -> str | None:
        """The image of the task at this address (a per-task check's target)."""
        for services in self.stacks.values():
            for svc in services.values():
                for task in svc.tasks:
                    if task.ip == ip:
                        return _tagged(task.template["image"])
        return None

    def tags(self, stack: str, name: str) -> list[str]:
        """The image tag each task runs, by slot."""
        svc = self.stacks.get(stack, {}).get(name)
        tasks = sorted(svc.tasks, key=lambda t: t.slot) if svc else []
        return [_tagged(t.template["image"]).rsplit(":", 1)[1] for t in tasks]

    # ---------------------------------------------------------------- the task model

    def _state(self, task: _Task) -> str:
        image = _tagged(task.template["image"])
        if image in self.crashing or image in self.unstartable:
            return "failed"
        after = self.crash_after.get(image)
        if after is not None and (self.clock.now() - task.started).total_seconds() >= after:
            return "failed"
        if image in self.never_ready or image not in self.images:
            return "starting"
        return "running"

    def _err(self, task: _Task) -> str:
        unstartable = _tagged(task.template["image"]) in self.unstartable
        return UNSTARTABLE if unstartable else "task: non-zero exit (1)"

    def _new_task(self, slot: int, template: JSONDict) -> _Task:
        ip = f"10.0.0.{next(self._addresses)}"
        return _Task(slot, copy.deepcopy(template), ip, self.clock.now())

    def _roll(self, svc: _Service, definition: JSONDict) -> None:
        """Swarm's rolling update towards ``definition`` (the service's tasks, replaced)."""
        template = _template(definition)
        deploy = definition.get("deploy") or {}
        replicas = int(deploy.get("replicas", 1))
        update = deploy.get("update_config") or {}
        tasks = sorted(svc.tasks, key=lambda t: t.slot)[:replicas]
        tasks += [self._new_task(n, template) for n in range(len(tasks) + 1, replicas + 1)]
        outdated = [t for t in tasks if t.template != template]
        if update.get("delay") == HOLD:
            outdated = outdated[: int(update.get("parallelism", 1))]
        for task in outdated:
            tasks[tasks.index(task)] = self._new_task(task.slot, template)
        svc.tasks = tasks
        for image in {_tagged(t.template["image"]) for t in tasks}:
            count = sum(1 for t in tasks if _tagged(t.template["image"]) == image)
            self.peak[image] = max(self.peak.get(image, 0), count)
        left = [t for t in tasks if t.template != template]
        if outdated or svc.update_state == "updating":
            svc.update_state = "updating" if left else "completed"
            svc.update_started = self.clock.now()

    def _apply(self, stack: str, name: str, definition: JSONDict) -> None:
        current = self.stacks.setdefault(stack, {})
        old = current.get(name)
        if old is None:
            svc = _Service(copy.deepcopy(definition), version=next(self._index))
            self._roll(svc, definition)
            current[name] = svc
        elif old.definition != definition:
            old.previous = old.definition
            old.definition = copy.deepcopy(definition)
            old.version = next(self._index)
            self._roll(old, definition)

    def _running(self, svc: _Service) -> int:
        return sum(1 for t in svc.tasks if self._state(t) == "running")

    def _live(self, stack: str, name: str, svc: _Service) -> LiveService:
        labels = (svc.definition.get("deploy") or {}).get("labels") or {}
        # the secrets by their Swarm names, as the engine tells them
        secrets = tuple(svc.definition.get("x-secrets") or ())
        fields = replace(fields_from_compose(svc.definition), secrets=secrets)
        return LiveService(
            name=name,
            id=hashlib.sha1(f"{stack}_{name}".encode()).hexdigest()[:25],  # noqa: S324
            version=svc.version,
            fields=fields,
            spec_hash=labels.get("driftless.spec-hash"),
            revision=labels.get("driftless.revision"),
            replicas_running=self._running(svc),
            replicas_desired=fields.replicas or 0,
            update_state=svc.update_state,
            spec={"Name": f"{stack}_{name}", "compose": copy.deepcopy(svc.definition)},
            previous_spec=(
                {"Name": f"{stack}_{name}", "compose": copy.deepcopy(svc.previous)}
                if svc.previous is not None
                else None
            ),
            previous_revision=((svc.previous or {}).get("deploy") or {})
            .get("labels", {})
            .get("driftless.revision"),
        )

    # ---------------------------------------------------------------- the port

    async def live_state(self, stack: str) -> LiveState:
        self._hook("live_state")
        self._reach("reading the live services")
        services = self.stacks.get(stack, {})
        live = [self._live(stack, n, s) for n, s in sorted(services.items())]
        return LiveState(stack=stack, services=tuple(live))

    def digest(self, image: str) -> str:
        """The digest the registry gives for ``image`` (until :meth:`repush`)."""
        seed = self.repushed.get(image, image)
        return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()

    def repush(self, image: str) -> None:
        """Push the tag again with other content: a new digest."""
        self.repushed[image] = self.repushed.get(image, image) + "+"

    async def image_digest(self, image: str) -> str | None:
        self._hook("image_digest")
        self._reach(f"checking image {image}")
        if self.registry_error:
            registry = parse_image(image).registry
            fault = docker_fault(self.registry_error, status=500, registry=registry)
            raise docker_error(f"checking image {image}", self.registry_error, fault)
        return self.digest(image) if image in self.images else None

    async def missing_objects(
        self, secrets: Sequence[str], configs: Sequence[str], networks: Sequence[str]
    ) -> list[str]:
        self._reach("checking secrets, configs and networks")
        wanted = [f"secret {s}" for s in secrets] + [f"config {c}" for c in configs]
        wanted += [f"network {n}" for n in networks]
        return [w for w in wanted if w not in self.objects]

    async def nodes(self) -> list[Node]:
        self._reach("listing the Swarm's nodes")
        return list(self.swarm_nodes)

    async def validate_compose(self, path: Path) -> None:
        self._hook("validate_compose")
        self._reach("docker stack config")
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
            raise ValidationError("docker stack config rejects the rendered stack: no services")

    async def deploy(self, stack: str, compose: Path, *, prune: bool, time_limit: float) -> str:
        """Fails as the adapter does once its tries are over: a ``DockerError`` named after the
        component when the failure is the engine's or a registry's, else an ``ApplyError``."""
        self._hook("deploy")
        if self.deploy_races:
            self.deploy_races -= 1
            raise DockerError(f"docker stack deploy failed 3 times: network {stack}_back not found")
        self._reach("docker stack deploy failed")
        why = self.deploy_error or self.registry_error
        if why:
            fault = docker_fault(why)
            if fault.reason is not None:
                raise docker_error("docker stack deploy failed 3 times", why, fault)
            raise ApplyError(f"docker stack deploy failed: {why}", detail=why)
        doc = yaml.safe_load(compose.read_text())
        services = self._with_secrets(stack, doc)
        for name, definition in services.items():
            self._apply(stack, name, definition)
        if prune:
            current = self.stacks.get(stack, {})
            for name in set(current) - set(services):
                del current[name]
        self.deploys += 1
        self.deployed.append({n: _tagged(d["image"]) for n, d in services.items()})
        return f"Updating service {stack}_" + f", {stack}_".join(sorted(services))

    def _with_secrets(self, stack: str, doc: JSONDict) -> dict[str, JSONDict]:
        """The document's services, each with the Swarm names of its secrets (``x-secrets``, part
        of what its tasks run: a new name rolls them); an external secret that does not exist
        fails the deploy, as Docker does."""
        services: dict[str, JSONDict] = {}
        for name, definition in doc["services"].items():
            names = _secret_names(stack, doc, definition)
            for secret in names:
                if secret not in self.secrets and f"secret {secret}" not in self.objects:
                    why = f"service {name}: secret not found: {secret}"
                    raise ApplyError(f"docker stack deploy failed: {why}", detail=why)
            services[name] = {**definition, "x-secrets": names} if names else definition
        return services

    def _in_use(self, stack: str) -> set[str]:
        return {
            n
            for svc in self.stacks.get(stack, {}).values()
            for n in svc.definition.get("x-secrets") or []
        }

    async def create_secrets(self, stack: str, secrets: Sequence[SealedSecret]) -> list[str]:
        self._hook("create_secrets")
        self._reach("creating the SOPS secrets")
        if self.secret_error:
            raise ApplyError(
                f"creating the SOPS secrets: the Docker engine refused it: {self.secret_error}"
            )
        created = []
        for secret in secrets:
            if secret.name not in self.secrets:
                labels = {"com.docker.stack.namespace": stack, SOPS_LABEL: secret.key}
                self.secrets[secret.name] = _Secret(secret.value, labels)
                created.append(secret.name)
        return created

    async def prune_secrets(self, stack: str, keep: Collection[str]) -> list[str]:
        self._hook("prune_secrets")
        self._reach("removing unused SOPS secrets")
        used = self._in_use(stack)
        removed = [
            name
            for name, secret in sorted(self.secrets.items())
            if secret.labels.get("com.docker.stack.namespace") == stack
            and SOPS_LABEL in secret.labels
            and name not in keep
            and name not in used
        ]
        for name in removed:
            del self.secrets[name]
        return removed

    def secret_value(self, name: str) -> bytes | None:
        """What a task mounting secret ``name`` reads at /run/secrets/…"""
        secret = self.secrets.get(name)
        return secret.data if secret else None

    def mounted(self, stack: str, service: str) -> list[str]:
        """The Swarm names of the secrets the service's tasks mount."""
        svc = self.stacks.get(stack, {}).get(service)
        return list(svc.definition.get("x-secrets") or []) if svc else []

    def _view(self, stack: str, svc: _Service, task: _Task) -> TaskView:
        nets = svc.definition.get("networks") or ["default"]
        state = self._state(task)
        return TaskView(
            id=f"{task.ip}.{task.slot}",
            slot=task.slot,
            current=task.template == _template(svc.definition),
            desired="running",
            state=state,
            since=task.started,
            message=self._err(task) if state == "failed" else "",
            addresses={f"{stack}_{n}": task.ip for n in nets},
        )

    async def tasks(self, stack: str, service: str) -> ServiceTasks:
        self._hook("tasks")
        self._reach(f"reading the tasks of {service}")
        svc = self.stacks.get(stack, {}).get(service)
        if svc is None:
            return ServiceTasks(exists=False)
        views = tuple(self._view(stack, svc, t) for t in sorted(svc.tasks, key=lambda t: t.slot))
        return ServiceTasks(True, svc.update_state, "", svc.update_started, views)

    def _progress(self, stack: str, name: str, time_limit: float) -> CheckResult:
        svc = self.stacks.get(stack, {}).get(name)
        if svc is None:
            return CheckResult(name, ok=False, kind="gone", output="service does not exist")
        states = [self._state(t) for t in svc.tasks]
        want, running = len(svc.tasks), states.count("running")
        if any(_tagged(t.template["image"]) in self.unstartable for t in svc.tasks):
            # Swarm's paused update resumed again and again, till the time limit
            output = (
                f"not converged after {time_limit:.0f}s: Swarm paused the update when the "
                f"engine could not start task x ({UNSTARTABLE}), not for the revision: resuming it"
            )
            return CheckResult(name, ok=False, kind="engine", output=output)
        if "failed" in states:
            output = "3 tasks of the new spec failed: task: non-zero exit (1)"
            return CheckResult(name, ok=False, kind="swarm", output=output)
        if svc.update_state == "updating" or running < want:
            output = f"not converged after {time_limit:.0f}s: {running}/{want} tasks running"
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
                self._apply(stack, name, spec["compose"])
        if self.rollback_stuck:
            raise RollbackError(
                "rollback did not converge: "
                + "; ".join(f"{n}: not converged after {time_limit:.0f}s" for n in previous)
            )


class FakeDecryptor:
    """Implements ``reconciler.sopsfiles.Decryptor`` without sops: a file it decrypts is shaped as
    sops writes it (a mapping with its ``sops`` metadata; a binary file's ``data``), its values
    taken as they are. ``refused``: file name → sops's words for refusing it."""

    def __init__(self, identity: bytes = b"AGE-SECRET-KEY-1FAKE") -> None:
        self.identity = identity
        self.refused: dict[str, str] = {}
        self.decrypted: list[str] = []

    def name_key(self) -> bytes:
        return hashlib.sha256(self.identity).digest()

    def decrypt(self, path: PurePath, fmt: Format) -> bytes:
        if path.name in self.refused:
            raise ValidationError(self.refused[path.name])
        self.decrypted.append(path.name)
        text = Path(path).read_text()
        if fmt is Format.DOTENV:
            pairs = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
            return json.dumps(
                {k: v for k, v in pairs.items() if not k.startswith("sops_")}
            ).encode()
        document = yaml.safe_load(text)
        if not fmt.mapping:
            return str(document["data"]).encode()
        return json.dumps({k: v for k, v in document.items() if k != "sops"}).encode()


class FakeMetrics:
    """Implements ``reconciler.ports.MetricsSource``: an answer per query (after its
    placeholders are filled in), ``default`` for any other; ``down``: Prometheus unreachable."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}
        self.refused: dict[str, str] = {}  # query → Prometheus's parse error
        self.default: float | None = None
        self.down = False
        self.queries: list[str] = []

    async def query(self, promql: str, proxy: str | None = None) -> Answer:
        self.queries.append(promql)
        if self.down:
            return Answer(None, "Prometheus at http://prometheus:9090 unreachable: refused")
        if promql in self.refused:
            return Answer(None, self.refused[promql], bad_query=True)
        value = self.values.get(promql, self.default)
        return Answer(value, "no data" if value is None else "")

    async def check(self, promql: str, proxy: str | None = None) -> str | None:
        answer = await self.query(promql, proxy)
        return answer.detail if answer.bad_query else None


# ------------------------------------------------------------------ HTTP checks


class FakeProbes:
    """Implements ``reconciler.ports.ProxyProvider``: a probe that reaches every network."""

    def __init__(self) -> None:
        self.networks: list[str] = []
        self.missing: set[str] = set()  # networks that do not exist (yet)
        self.closed = 0

    async def proxy_for(self, network: str) -> str:
        if network in self.missing:
            raise DockerError(f"attaching the probe to {network}: network {network} not found")
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
        image = None
        host = urlsplit(check.url).hostname or ""
        if self.swarm is not None:
            image = self.swarm.image_at(host)
        if image is None and self.swarm is not None and check.service:
            image = self.swarm.image(self.stack, check.service)
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


# ------------------------------------------------------------------ the lease object


@dataclass
class LeaseReading:
    lease: Lease | None
    version: int


@dataclass
class FakeLeaseObject:
    """A versioned object with compare-and-swap, like the Swarm's service update."""

    current: Lease | None = None
    version: int = 1
    down: bool = False
    writes: list[Lease] = field(default_factory=list)

    def read(self) -> LeaseReading:
        if self.down:
            raise DockerError("reading the agent's state: the Swarm does not have a leader")
        return LeaseReading(self.current, self.version)

    def swap(self, version: int, new: Lease) -> bool:
        if self.down:
            raise DockerError("writing the agent's state: the Swarm does not have a leader")
        if version != self.version:
            return False
        self.current, self.version = new, self.version + 1
        self.writes.append(new)
        return True

    def forget(self) -> None:
        pass

    def renew(self, holder: str) -> None:
        """The holder ``holder`` renews its lease (a new version, as every write makes)."""
        assert self.current is not None
        self.current = replace(self.current, holder=holder)
        self.version += 1
