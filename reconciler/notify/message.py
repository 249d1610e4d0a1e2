"""One channel-neutral message per event: title, tone, the facts (stack, environment, revision,
services, reason), the text, details and links. Each channel formats it its own way.

Everything in a ``Message`` is masked (``reconciler.redact``): no token, webhook URL, secret
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
    Recovered,
    RevertPushed,
    RevisionRefused,
    Stalled,
)
from reconciler.links import RepoLinks
from reconciler.models import RevisionInfo
from reconciler.redact import MASK, mask_text, secret_field

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


def build(event: Event, repo: RepoLinks, status_url: str = "") -> Message:
    rev = event.revision
    rev_url = repo.commit(rev.sha) if rev else None
    short = rev.short if rev else "?"
    where = f"{event.stack} ({event.environment})"
    details: list[Detail] = []
    links: list[Link] = []
    services: tuple[str, ...] = ()
    reason = ""
    text = ""

    if isinstance(event, DeploySucceeded):
        tone, services = "ok", event.services
        title = f"Deployed {short} to {where}"
        text = (
            f"{', '.join(services) or 'No service'} updated and verified "
            f"in {event.duration_seconds:.0f}s."
        )
        reason = "ReconciliationSucceeded"
    elif isinstance(event, DeployFailed):
        tone, services, reason = (
            ("bad" if event.rollback_ok else "stalled"),
            event.rolled_back,
            event.reason,
        )
        back = (
            f"rolled back: {', '.join(event.rolled_back)}"
            if event.rollback_ok and event.rolled_back
            else "nothing to roll back"
            if event.rollback_ok
            else "ROLLBACK FAILED"
        )
        title = f"Deploy of {short} to {where} failed, {back}"
        text = event.message
        for check in event.failed_checks:
            head = f"Failed check {check.name}"
            if check.status_code:
                head += f" (HTTP {check.status_code})"
            if check.url:
                head += f" {check.url}"
            details.append(Detail(head, check.output or "(no output)"))
    elif isinstance(event, RevertPushed):
        tone, reason = "warn", event.reason
        title = f"Reverted {short} in git ({where})"
        text = f"{event.reason}: {event.message}"
        commit_url = repo.commit(event.commit)
        links.append(Link(f"revert commit {event.commit[:12]}", commit_url))
        if len(event.reverted) > 1:
            details.append(
                Detail("Commits reverted", "\n".join(s[:12] for s in event.reverted), code=True)
            )
    elif isinstance(event, RevisionRefused):
        tone, reason = "warn", event.reason
        title = f"Refused {short} for {where}: {event.reason}"
        text = event.message
        if event.problems:
            details.append(Detail("Problems", "\n".join(f"- {p}" for p in event.problems)))
    elif isinstance(event, Stalled):
        tone, reason = "stalled", event.reason
        title = f"Stalled: {where} needs a human"
        text = event.message
    elif isinstance(event, DriftDetected):
        tone, services = ("info" if event.corrected else "warn"), event.services
        reason = "DriftCorrected" if event.corrected else "DriftDetected"
        state = "corrected" if event.corrected else "not corrected (self-heal is off)"
        title = f"Drift on {', '.join(services)} in {where}"
        text = f"Live services differ from git: {state}."
        lines = []
        for service, diffs in sorted(event.diffs.items()):
            for d in diffs:
                hidden = secret_field(d.field)
                live = MASK if hidden and d.live is not None else d.live
                want = MASK if hidden and d.desired is not None else d.desired
                lines.append(f"{service}: {d.field}: {live} \u2192 {want}")
        if lines:
            details.append(Detail("Differences (live \u2192 git)", "\n".join(lines)))
    elif isinstance(event, Recovered):
        tone, reason = "ok", "Recovered"
        title = f"Recovered: {where} is ready again"
        text = f"Was {event.previous_reason}. {event.message}".strip()
    else:  # pragma: no cover - every Event type is handled above
        raise TypeError(f"unknown event {type(event).__name__}")

    if rev_url:
        links.insert(0, Link(f"commit {short}", rev_url))
    if status_url:
        links.append(Link("status page", status_url))
    return Message(
        kind=event.kind.value,
        severity=event.severity.value,
        tone=tone,
        title=mask_text(title),
        summary=mask_text(event.summary()),
        text=mask_text(text),
        stack=event.stack,
        environment=event.environment,
        revision=_masked_revision(rev),
        revision_url=rev_url,
        reason=reason,
        services=services,
        at=event.at,
        details=tuple(Detail(mask_text(d.title), mask_text(d.text), d.code) for d in details),
        links=tuple(links),
    )


def _masked_revision(rev: RevisionInfo | None) -> RevisionInfo | None:
    if rev is None:
        return None
    return RevisionInfo(
        sha=rev.sha,
        subject=mask_text(rev.subject),
        author=mask_text(rev.author),
        committed_at=rev.committed_at,
    )


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"
