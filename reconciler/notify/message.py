"""One channel-neutral message per event: title, tone, the facts (stack, environment, revision,
services, reason), the text, details and links. Each channel formats it its own way.

Everything in a ``Message`` is masked (the agent's ``Masker``): no token, webhook URL, secret
environment value or repository credential reaches a chat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reconciler.events import (
    DeployFailed,
    DeploySucceeded,
    DriftDetected,
    Event,
    OutsideSyncWindow,
    Recovered,
    RevertPushed,
    RevisionRefused,
    Stalled,
)
from reconciler.links import RepoLinks
from reconciler.models import CheckResult, RevisionInfo
from reconciler.redact import MASK, Mask, secret_field

#: tone → (emoji, RGB colour)
TONES = {
    "ok": ("✅", 0x1F9D55),
    "info": ("\u2139\ufe0f", 0x2563EB),
    "warn": ("⚠️", 0xD97706),
    "bad": ("🔴", 0xDC2626),
    "stalled": ("🛑", 0x991B1B),
}


@dataclass(frozen=True)
class Link:
    text: str
    url: str | None = None


@dataclass(frozen=True)
class Detail:
    """A titled block of text (a failed check's output, the problems, the drift)."""

    title: str
    text: str
    code: bool = True


@dataclass(frozen=True)
class Message:
    kind: str
    severity: str
    tone: str
    title: str
    summary: str  # one line, plain text (the fallback of rich formats)
    text: str  # the reason in words
    stack: str
    environment: str
    revision: RevisionInfo | None
    revision_url: str | None
    reason: str
    services: tuple[str, ...]
    at: datetime
    details: tuple[Detail, ...] = ()
    links: tuple[Link, ...] = field(default_factory=tuple)

    @property
    def emoji(self) -> str:
        return TONES[self.tone][0]

    @property
    def color(self) -> int:
        return TONES[self.tone][1]

    def revision_text(self) -> str:
        if self.revision is None:
            return "\u2013"
        subject = f" {self.revision.subject}" if self.revision.subject else ""
        return f"{self.revision.short}{subject}"


@dataclass
class _Said:
    """What one kind of event says, before the links to the commit and the page and masking."""

    tone: str
    title: str
    text: str = ""
    reason: str = ""
    services: tuple[str, ...] = ()
    details: list[Detail] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


def _succeeded(event: DeploySucceeded, short: str, where: str) -> _Said:
    return _Said(
        "ok",
        f"Deployed {short} to {where}",
        f"{', '.join(event.services) or 'No service'} updated and verified "
        f"in {event.duration_seconds:.0f}s.",
        "ReconciliationSucceeded",
        event.services,
    )


def _check_detail(check: CheckResult) -> Detail:
    head = f"Failed check {check.name}"
    if check.status_code:
        head += f" (HTTP {check.status_code})"
    if check.url:
        head += f" {check.url}"
    return Detail(head, check.output or "(no output)")


def _failed(event: DeployFailed, short: str, where: str) -> _Said:
    back = (
        f"rolled back: {', '.join(event.rolled_back)}"
        if event.rollback_ok and event.rolled_back
        else "nothing to roll back"
        if event.rollback_ok
        else "ROLLBACK FAILED"
    )
    return _Said(
        "bad" if event.rollback_ok else "stalled",
        f"Deploy of {short} to {where} failed, {back}",
        event.message,
        event.reason,
        event.rolled_back,
        details=[_check_detail(check) for check in event.failed_checks],
    )


def _reverted(event: RevertPushed, short: str, where: str, repo: RepoLinks) -> _Said:
    if event.proposal:  # the branch takes no direct pushes: the revert waits in a pull request
        title = f"Revert of {short} proposed in a pull request ({where})"
        links = [Link("pull request", event.proposal)]
    else:
        title = f"Reverted {short} in git ({where})"
        links = [Link(f"revert commit {event.commit[:12]}", repo.commit(event.commit))]
    said = _Said("warn", title, f"{event.reason}: {event.message}", event.reason, links=links)
    if len(event.reverted) > 1:
        said.details.append(
            Detail("Commits reverted", "\n".join(s[:12] for s in event.reverted), code=True)
        )
    return said


def _refused(event: RevisionRefused, short: str, where: str) -> _Said:
    said = _Said(
        "warn", f"Refused {short} for {where}: {event.reason}", event.message, event.reason
    )
    if event.problems:
        said.details.append(Detail("Problems", "\n".join(f"- {p}" for p in event.problems)))
    return said


def _drift_lines(event: DriftDetected) -> list[str]:
    lines = []
    for service, diffs in sorted(event.diffs.items()):
        for d in diffs:
            hidden = secret_field(d.field)
            live = MASK if hidden and d.live is not None else d.live
            want = MASK if hidden and d.desired is not None else d.desired
            lines.append(f"{service}: {d.field}: {live} \u2192 {want}")
    return lines


def _drifted(event: DriftDetected, where: str) -> _Said:
    state = "corrected" if event.corrected else "not corrected (self-heal is off)"
    said = _Said(
        "info" if event.corrected else "warn",
        f"Drift on {', '.join(event.services)} in {where}",
        f"Live services differ from git: {state}.",
        "DriftCorrected" if event.corrected else "DriftDetected",
        event.services,
    )
    lines = _drift_lines(event)
    if lines:
        said.details.append(Detail("Differences (live \u2192 git)", "\n".join(lines)))
    return said


def _say(event: Event, short: str, where: str, repo: RepoLinks) -> _Said:
    if isinstance(event, DeploySucceeded):
        return _succeeded(event, short, where)
    if isinstance(event, DeployFailed):
        return _failed(event, short, where)
    if isinstance(event, RevertPushed):
        return _reverted(event, short, where, repo)
    if isinstance(event, RevisionRefused):
        return _refused(event, short, where)
    if isinstance(event, Stalled):
        return _Said("stalled", f"Stalled: {where} needs a human", event.message, event.reason)
    if isinstance(event, DriftDetected):
        return _drifted(event, where)
    if isinstance(event, OutsideSyncWindow):
        return _Said(
            "warn",
            f"Not applied: {short} to {where}, outside the sync windows",
            f"{event.message}. To apply this revision now: Sync anyway on the status page, or "
            "`reconciler sync-anyway`.",
            "OutsideSyncWindow",
            event.services,
        )
    if isinstance(event, Recovered):
        text = f"Was {event.previous_reason}. {event.message}".strip()
        return _Said("ok", f"Recovered: {where} is ready again", text, "Recovered")
    raise TypeError(f"unknown event {type(event).__name__}")  # pragma: no cover


def build(event: Event, repo: RepoLinks, mask: Mask, status_url: str = "") -> Message:
    rev = event.revision
    rev_url = repo.commit(rev.sha) if rev else None
    short = rev.short if rev else "?"
    said = _say(event, short, f"{event.stack} ({event.environment})", repo)
    links = list(said.links)
    if rev_url:
        links.insert(0, Link(f"commit {short}", rev_url))
    if status_url:
        links.append(Link("status page", status_url))
    return Message(
        kind=event.kind.value,
        severity=event.severity.value,
        tone=said.tone,
        title=mask(said.title),
        summary=mask(event.summary()),
        text=mask(said.text),
        stack=event.stack,
        environment=event.environment,
        revision=_masked_revision(rev, mask),
        revision_url=rev_url,
        reason=said.reason,
        services=said.services,
        at=event.at,
        details=tuple(Detail(mask(d.title), mask(d.text), d.code) for d in said.details),
        links=tuple(links),
    )


def _masked_revision(rev: RevisionInfo | None, mask: Mask) -> RevisionInfo | None:
    if rev is None:
        return None
    return RevisionInfo(
        sha=rev.sha,
        subject=mask(rev.subject),
        author=mask(rev.author),
        committed_at=rev.committed_at,
    )


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"
