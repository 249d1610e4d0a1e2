"""Promotion (pure): a revision verified in one environment is proposed to the next one, by
digest.

After a pass that applied and verified a revision (staging, say), the agent proposes the next
environment's ``images.yaml`` with the same images, each pinned to the digest that ran and passed
its checks here (``name:tag@sha256:…``), in a pull (merge) request whose description carries this
environment's verification. A revision that failed here is never applied here, so it is never
proposed; one proposed once is not proposed again (``Status.promotion``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from reconciler.models import RevisionInfo
from reconciler.status import ServiceStatus

#: the trailer of a promotion commit: the revision it promotes
TRAILER = "Driftless-Promotion-Of"
_LINE = re.compile(r"^(?P<key>[A-Za-z0-9_.-]+)(?P<sep>\s*:\s*)(?P<ref>\S+)(?P<rest>\s*(#.*)?)$")


def branch(sha: str) -> str:
    """The branch a promotion is proposed from: one per revision, so a pass that runs again
    finds the branch (and its request) an earlier one left."""
    return f"driftless/promote-{sha[:12]}"


def running_images(inventory: Sequence[ServiceStatus]) -> dict[str, str]:
    """Service → ``name:tag@digest`` of what runs here (services whose digest is known)."""
    out = {}
    for svc in inventory:
        if svc.live_image and svc.live_digest and svc.in_sync:
            out[svc.name] = f"{svc.live_image}@{svc.live_digest}"
    return out


def promoted_images(target: str, running: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The next environment's ``images.yaml`` (``target``, its text) with each service it names
    set to what runs here, comments and order kept; and what changed (service → new reference).
    Services only one side has are left alone."""
    lines, changed = [], {}
    for line in target.splitlines():
        match = _LINE.match(line)
        ref = running.get(match["key"]) if match else None
        if match and ref and match["ref"].strip("'\"") != ref:
            line = f"{match['key']}{match['sep']}{ref}{match['rest']}"
            changed[match["key"]] = ref
        lines.append(line)
    return "\n".join(lines) + ("\n" if target.endswith("\n") or not target else ""), changed


def message(
    revision: RevisionInfo,
    source: str,
    target_env: str,
    changed: Mapping[str, str],
    inventory: Sequence[ServiceStatus],
    verified_in: float | None,
) -> tuple[str, str]:
    """Title and description of the promotion's commit and pull request: what is proposed and
    how it was verified in ``source``."""
    title = f"Promote {revision.short} from {source} to {target_env}"
    lines = [
        f"{revision.short} ({revision.subject}) was applied and verified in {source}; this sets "
        f"{target_env} to the same images, by the digest that ran there.",
        "",
        "Images:",
        *(f"- {svc}: {ref}" for svc, ref in sorted(changed.items())),
        "",
        f"Verification in {source}:",
    ]
    if verified_in is not None:
        lines.append(f"- applied and verified in {verified_in:.0f}s")
    for svc in inventory:
        check = svc.last_check
        if check is not None:
            state = "passed" if check.ok else "FAILED"
            lines.append(f"- {svc.name}: {check.name} {state}: {check.output[:200]}")
        else:
            healthy = "healthy" if svc.healthy else "not healthy"
            lines.append(
                f"- {svc.name}: {svc.replicas_running}/{svc.replicas_desired} running, {healthy}"
            )
    lines += ["", f"{TRAILER}: {revision.sha}"]
    return title, "\n".join(lines)
