"""``reconciler status``: what the agent last recorded, for a person or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from reconciler.cli.setup import load
from reconciler.decisions import ExitCode
from reconciler.serialize import to_jsonable
from reconciler.status import ConditionType, Status
from reconciler.windows import Verdict, report, verdict
from reconciler.wiring import state_store


def cmd_status(args: argparse.Namespace) -> int:
    config = load(args, require_git=False)
    store = state_store(config)
    if not store.has_status():
        where = "the Swarm" if config.state.store == "swarm" else config.state_dir
        print(f"no status recorded yet in {where}", file=sys.stderr)
        return ExitCode.PENDING
    status = store.load_status(config.stack, config.environment)
    journal = store.load_journal()
    now, windows = datetime.now(UTC), config.sync.windows
    if args.json:
        data = status.to_dict()
        data["journal"] = to_jsonable(journal) if journal else None
        if journal is not None:
            data["journal"].pop("previous", None)
        data["sync_windows"] = report(windows, now)
        print(json.dumps(data, indent=2))
    else:
        print(status_text(status, journal is not None, verdict(windows, now)))
    return ExitCode.OK if status.is_true(ConditionType.READY) else ExitCode.PENDING


def _header(status: Status) -> list[str]:
    lines = [
        f"stack {status.stack} ({status.environment})" + ("  [PAUSED]" if status.paused else "")
    ]
    for label, rev in (
        ("desired", status.desired),
        ("last applied", status.last_applied),
        ("last attempted", status.last_attempted),
    ):
        if rev is not None:
            lines.append(f"  {label + ':':16}{rev.short}  {rev.subject}  ({rev.author})")
    for cond in status.conditions:
        state = {True: "True", False: "False", None: "Unknown"}[cond.status]
        lines.append(f"  {cond.type.value + ':':16}{state:8}{cond.reason}  {cond.message}".rstrip())
    if status.last_pass_at:
        lines.append(
            f"  last pass:      {status.last_pass_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{status.last_result.value if status.last_result else '-'}"
        )
    return lines


def _windows(status: Status, seen: Verdict | None) -> list[str]:
    lines = []
    if seen is not None and seen.windows:
        state = "open" if seen.open else "CLOSED"
        lines.append(f"  {'sync windows:':16}{state:8}{seen.message}")
    if status.sync_anyway:
        lines.append(
            f"  {'sync anyway:':16}{status.sync_anyway[:12]} may be applied outside the windows"
        )
    return lines


def _services(status: Status) -> list[str]:
    lines = ["services:"] if status.inventory else []
    for s in status.inventory:
        sync = "in sync" if s.in_sync else s.action
        health = {True: "healthy", False: "UNHEALTHY", None: "-"}[s.healthy]
        lines.append(
            f"  {s.name:24} {s.replicas_running}/{s.replicas_desired:<4} {health:9} "
            f"{sync:10} {s.image or s.live_image}"
        )
    return lines


def _rollout(status: Status) -> list[str]:
    rollout = status.rollout
    if rollout is None:
        return []
    lines = [f"rollout: wave {rollout.wave}/{rollout.waves} ({', '.join(rollout.services)})"]
    if rollout.stopped:
        lines.append(f"  stopped: {rollout.stopped}")
    for canary in rollout.canaries:
        lines.append(f"  {canary.service} canary: {canary.step}: {canary.message}")
        lines += [f"    {a.summary}" for a in canary.analyses]
    return lines


def _failures(status: Status) -> list[str]:
    lines = []
    if status.quarantine:
        lines.append("quarantined revisions:")
        lines += [f"  {q.revision.short}  {q.reason}: {q.message}" for q in status.quarantine]
    if status.reverts:
        lines.append("reverts pushed:")
        lines += [
            f"  {r.commit[:12]} reverts {r.revision.short}: {r.reason}"
            + (f" (proposed in {r.proposal})" if r.proposal else "")
            for r in status.reverts
        ]
    return lines


def _history(status: Status) -> list[str]:
    lines = ["history (newest first):"] if status.history else []
    for h in status.history[:10]:
        short = h.revision.short if h.revision else "-"
        count = f" x{h.count}" if h.count > 1 else ""
        lines.append(
            f"  {h.finished_at:%Y-%m-%d %H:%M:%S}  {short}  {h.result.value:11} "
            f"{h.reason}{count}  {h.message}"
        )
    return lines


def status_text(status: Status, resuming: bool, windows: Verdict | None = None) -> str:
    """``windows``: the sync windows' verdict now (None: not shown)."""
    lines = _header(status) + _windows(status, windows)
    if resuming:
        lines.append("  an interrupted pass will be resumed at the next start")
    lines += _services(status) + _rollout(status) + _failures(status) + _history(status)
    return "\n".join(lines)
