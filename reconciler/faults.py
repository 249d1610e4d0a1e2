"""What a failure means, read from its text, in one place (pure): which component failed (the
Docker engine, a registry, the git remote, or the revision itself) and whether it passes by itself.

The adapters read every failure through this module: the docker CLI's stderr, the Docker Engine
API's error messages (through the SDK) and git's stderr. What it tells them:

* the **engine**'s trouble (it restarts or does not answer, the Swarm raft has no leader, a
  network Docker is still removing — ``docker stack rm`` returns before a stack's networks are
  gone, so a deploy right after fails with "network <stack>_<net> not found") is never the
  revision's fault: ``DockerUnavailable``, retried;
* a **registry** that is down, answers 5xx or 429, or is slow: ``RegistryUnavailable``, retried.
  A registry that refuses access (unauthorized, denied, a bad certificate) needs a human; private
  registries answer the same for "missing" and "not yours to read", so the caller treats it like
  a missing image;
* the **git remote** unreachable, timing out or answering 5xx: ``GitRemoteUnavailable``; refused
  credentials, an unknown host key or a missing branch: ``ArtifactFailed`` (both retried); a
  push the remote refuses by policy (a protected branch, a ruleset, a server hook:
  :func:`push_refusal`) can only go through a pull or merge request;
* anything else the docker CLI says (the stack file, an image that does not exist, a bad mount)
  is the **revision**'s, and so is an Engine API answer of 4xx.

Each answer keeps the line of the text that decided it (``evidence``), for a short message; the
caller keeps the whole text as the error's ``detail``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.errors import BranchProtected, DockerError, GitError, Reason, StateError


class Component(StrEnum):
    ENGINE = "engine"
    REGISTRY = "registry"
    GIT_REMOTE = "git remote"
    REVISION = "revision"  # the revision (its spec, its images) is at fault


@dataclass(frozen=True)
class Fault:
    component: Component
    transient: bool  # passes by itself: worth trying again soon
    evidence: str = ""  # the line of the text that decided it
    where: str = ""  # the registry's host, when known

    @property
    def who(self) -> str:
        """The component in words: "Docker engine", "registry 127.0.0.1:5000", ..."""
        if self.component is Component.REGISTRY:
            return f"registry {self.where}" if self.where else "the registry"
        return {
            Component.ENGINE: "Docker engine",
            Component.GIT_REMOTE: "git remote",
            Component.REVISION: "the revision",
        }[self.component]

    @property
    def words(self) -> str:
        """What happened, for a message: "git remote unreachable", "registry x refused"."""
        return f"{self.who} {'unreachable' if self.transient else 'refused'}"

    @property
    def reason(self) -> Reason | None:
        """The reason of the error that is retried for it; None when the revision is at fault
        (the phase names that) or a registry refuses access (the caller decides)."""
        if self.component is Component.ENGINE:
            return Reason.DOCKER_UNAVAILABLE
        if self.component is Component.REGISTRY:
            return Reason.REGISTRY_UNAVAILABLE if self.transient else None
        if self.component is Component.GIT_REMOTE:
            return Reason.GIT_REMOTE_UNAVAILABLE if self.transient else Reason.ARTIFACT_FAILED
        return None


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


#: the docker client could not talk to the engine at all
_ENGINE_UNREACHABLE = _rx(
    r"cannot connect to the docker daemon",
    r"is the docker daemon running",
    r"error during connect",
    r"docker\.sock",
    r"error while fetching server API version",
    r"max retries exceeded with url",
    r"connection aborted",
)
#: a registry refuses access: needs a human (credentials, certificates), not a retry
_REGISTRY_REFUSED = _rx(
    r"\bunauthorized\b",
    r"\bdenied\b",
    r"authentication required",
    r"no basic auth credentials",
    r"received unexpected HTTP status: 40[13]\b",
    r"x509:",
    r"certificate signed by unknown authority",
    r"server gave HTTP response to HTTPS client",
)
#: the image (or the spec) is wrong: the revision's fault
_REVISION = _rx(
    r"manifest unknown",
    r"manifest for \S+ not found",
    r"rpc error: code = InvalidArgument",
)
#: the engine in trouble that passes
_ENGINE_TROUBLE = _rx(
    r"network \S+ not found",
    r"rpc error: code = (Unavailable|DeadlineExceeded|Aborted)",
    r"the swarm does not have a leader",
    r"update out of sequence",
    r"timed out after \d+s",
)
#: the engine refuses for a reason that is its own, not the revision's (needs a human)
_ENGINE_REFUSED = _rx(
    r"not a swarm manager",
    r"swarm is not active",
)
#: what only a registry (or the engine about one) says: trouble that passes
_REGISTRY_TROUBLE = _rx(
    r"received unexpected HTTP status: (5\d\d|429)",
    r"error parsing HTTP (5\d\d|429) response body",
    r"toomanyrequests",
    r"too many requests",
    r"net/http: request canceled",
    r"error pulling image configuration",
    r"\b50[234] (Bad Gateway|Service Unavailable|Gateway Time-?out)",
    r"TLS handshake timeout",
)
#: the connection to whoever was asked failed: the registry's when a registry was asked
_NETWORK = _rx(
    r"connection refused",
    r"connection reset",
    r"i/o timeout",
    r"context deadline exceeded",
    r"no such host",
    r"no route to host",
    r"network is unreachable",
    r"\bEOF\b",
)
#: the registry a text is about: ``Get "https://127.0.0.1:5000/v2/": ...``
_REGISTRY_URL = re.compile(r"https?://([^/\s\"']+)/v2/", re.IGNORECASE)


def _line(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : len(text) if end < 0 else end].strip()


def _find(patterns: Sequence[re.Pattern[str]], text: str) -> str | None:
    """The line of ``text`` where the first of ``patterns`` that matches matches."""
    for pattern in patterns:
        found = pattern.search(text)
        if found:
            return _line(text, found.start())
    return None


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


#: the docker rules in order, the first that matches decides: patterns, component (None: the
#: registry when one was asked, else the engine), transient
_DOCKER_RULES: tuple[tuple[tuple[re.Pattern[str], ...], Component | None, bool], ...] = (
    (_rx(r"permission denied while trying to connect"), Component.ENGINE, False),
    (_ENGINE_UNREACHABLE, Component.ENGINE, True),
    (_REGISTRY_REFUSED, Component.REGISTRY, False),
    (_REVISION, Component.REVISION, False),
    (_ENGINE_TROUBLE, Component.ENGINE, True),
    (_ENGINE_REFUSED, Component.ENGINE, False),
    (_REGISTRY_TROUBLE, Component.REGISTRY, True),
    (_NETWORK, None, True),
)


def docker_fault(text: str, *, status: int | None = None, registry: str = "") -> Fault:
    """Read a docker CLI's stderr or an Engine API error message. ``status``: the Engine API's
    HTTP status (None for the CLI); ``registry``: the request was about an image in this
    registry (the engine's distribution inspect), so trouble no one else owns is the registry's.
    A text no rule knows is the revision's, but an Engine API 5xx: the engine's (or the
    registry's it asked)."""
    url = _REGISTRY_URL.search(text)
    where = url.group(1) if url else registry
    asked = Component.REGISTRY if url or registry else Component.ENGINE
    for patterns, owner, passes in _DOCKER_RULES:
        line = _find(patterns, text)
        if line is not None:
            component, transient = owner or asked, passes
            break
    else:
        line = last_line(text)
        transient = status is not None and status >= 500
        component = asked if transient else Component.REVISION
    return Fault(component, transient, line, where if component is Component.REGISTRY else "")


#: git's words for credentials, host keys, a missing branch or repository: needs a human
_GIT_REFUSED = _rx(
    r"authentication failed",
    r"permission denied \(publickey",
    r"host key verification failed",
    r"couldn't find remote ref",
    r"repository '?\S*'? not found",
    r"does not appear to be a git repository",
    r"returned error: 4\d\d",
    r"could not read (Username|Password)",
    r"terminal prompts disabled",
    r"SSL certificate problem",
    r"server certificate verification failed",
)
#: git could not reach the remote, or the remote failed: passes by itself
_GIT_TROUBLE = _rx(
    r"could not resolve host",
    r"connection refused",
    r"connection timed out",
    r"operation timed out",
    r"connection reset",
    r"couldn't connect to server",
    r"failed to connect to",
    r"no route to host",
    r"network is unreachable",
    r"RPC failed",
    r"early EOF",
    r"the remote end hung up unexpectedly",
    r"did not complete in \S+ secs",  # GitPython's kill_after_timeout
    r"process killed because it timed out",
    r"kex_exchange_identification",
    r"unable to access",
    r"could not read from remote repository",
)


#: the remote is busy or failing (checked before the 4xx of ``_GIT_REFUSED``)
_GIT_BUSY = _rx(r"returned error: (5\d\d|408|429)", r"RPC failed; HTTP (5\d\d|408|429)")


#: a task rejected because its image could not be pulled, for a reference pinned by digest:
#: ``docker stack deploy --resolve-image always`` resolved that digest from the registry, so the
#: image existed; the registry then failed to serve it while Swarm pulled
_PULL_FAILED = _rx(r"No such image: \S+@sha256:[0-9a-f]{64}")
_NOT_PULLED = _rx(r"No such image: \S+")
#: a task whose container the engine could not start for trouble of its own: Swarm's overlay gave
#: it an address the node still holds (moby/moby#24486, #34163; seen right after the managers
#: regained quorum). A published port taken on the host says "bind: address already in use".
_ENGINE_TASK = _rx(r"starting container failed: address already in use\s*$")


def task_fault(err: str, *, image_checked: bool = False) -> Fault:
    """What a failed task's error (``Status.Err``) says: the registry's trouble when an image
    known to exist could not be pulled (pinned by digest, or ``image_checked``: pre-flight found
    it in its registry just before the deploy), the engine's when it could not start the
    container for its own reasons (an overlay address still held), else the revision's (its
    process failed)."""
    found = _find(_NOT_PULLED if image_checked else _PULL_FAILED, err)
    if found is not None:
        return Fault(Component.REGISTRY, True, found, err.split(": ", 1)[-1].split("/", 1)[0])
    found = _find(_ENGINE_TASK, err)
    if found is not None:
        return Fault(Component.ENGINE, True, found)
    return Fault(Component.REVISION, False, last_line(err))


def git_fault(text: str) -> Fault:
    """Read git's stderr of a fetch or a push: the remote unreachable or failing (transient),
    or refusing (credentials, host key, missing branch: needs a human)."""
    if (line := _find(_GIT_BUSY, text)) is not None:
        return Fault(Component.GIT_REMOTE, True, line)
    if (line := _find(_GIT_REFUSED, text)) is not None:
        return Fault(Component.GIT_REMOTE, False, line)
    if (line := _find(_GIT_TROUBLE, text)) is not None:
        return Fault(Component.GIT_REMOTE, True, line)
    return Fault(Component.GIT_REMOTE, False, last_line(text))


#: the remote refuses a direct push to the branch by policy, in its own words: GitHub's branch
#: protection (GH006) and rulesets (GH013), GitLab's protected branches, any server hook that
#: declines (GitHub says "protected branch hook declined", a plain git server and GitLab
#: "pre-receive hook declined"); the most telling line first
_PUSH_REFUSED = _rx(
    r"GH006",
    r"GH013",
    r"not allowed to push code to protected branches",
    r"changes must be made through a pull request",
    r"protected branch hook declined",
    r"pre-receive hook declined",
)


def push_refusal(text: str) -> str | None:
    """The line of git's stderr of a push that says the remote refuses direct pushes to the
    branch (protected: only a pull or merge request gets a change in), or None when it does not
    say that (the remote moved, or failed)."""
    return _find(_PUSH_REFUSED, text)


def protected_error(branch: str, text: str) -> BranchProtected | None:
    """The error for a push to ``branch`` the remote refuses by policy (with what to do about
    it), or None when that is not what git's stderr ``text`` says."""
    line = push_refusal(text)
    if line is None:
        return None
    return BranchProtected(
        f"{branch} refuses direct pushes (protected): {line}; let the deploy key bypass the "
        "rule, or set git.revert_via to auto (a pull request)",
        detail=text.strip(),
    )


#: the agent's own disk (its git checkout is in the state directory), not the remote's trouble
_DISK = _rx(
    r"No space left on device",
    r"Out of diskspace",
    r"Disk quota exceeded",
    r"Read-only file system",
)


def disk_error(doing: str, text: str) -> StateError | None:
    """The error for a local git command that failed because the state directory cannot be
    written (retried once there is room), or None when that is not what ``text`` says."""
    line = _find(_DISK, text)
    if line is None:
        return None
    return StateError(f"{doing}: the state directory cannot be written: {line}", detail=text)


_CHANGED_KEY = "REMOTE HOST IDENTIFICATION HAS CHANGED"


def git_error(doing: str, text: str) -> GitError:
    """The error for a git command that failed talking to the remote: its reason names the
    remote's trouble (``GitRemoteUnavailable``) or a problem a human must fix
    (``ArtifactFailed``); the whole (masked) text is its ``detail``."""
    fault = git_fault(text)
    evidence = fault.evidence or text.strip()
    if _CHANGED_KEY in text:  # ssh's warning says more than its conclusion
        evidence += f" ({_CHANGED_KEY}: the remote's host key is not the one known)"
    return GitError(
        f"{doing}: {fault.words}: {evidence}",
        reason=fault.reason,
        detail=text.strip(),
    )


def docker_error(doing: str, text: str, fault: Fault) -> DockerError:
    """The error retried for the engine's or a registry's trouble, named after it:
    "checking image x: registry 127.0.0.1:5000 unreachable: ..." (``detail``: the whole text)."""
    registry = fault.component is Component.REGISTRY
    return DockerError(
        f"{doing}: {fault.words}: {fault.evidence or last_line(text)}",
        reason=Reason.REGISTRY_UNAVAILABLE if registry else Reason.DOCKER_UNAVAILABLE,
        detail=text.strip(),
    )
