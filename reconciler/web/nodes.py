"""The status page's nodes table: each node of the Swarm as the last pass read it (role, state,
availability, labels), and which one the acting agent runs on. Hidden with one node and one
agent: there is nothing to tell then."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.web.html import Html, join, tag
from reconciler.web.pieces import Doc, badge

_COLUMNS = ("Node", "Role", "State", "Availability", "Labels")


def _row(node: Doc, agent_node: str) -> Html:
    state, availability = node.get("state", ""), node.get("availability", "")
    labels = node.get("labels") or {}
    here = node.get("hostname") == agent_node
    return tag(
        "tr",
        tag(
            "td",
            tag("strong", node.get("hostname", "")),
            badge("agent", "ok") if here else "",
        ),
        tag("td", node.get("role", "")),
        tag("td", badge(state, "ok" if state == "ready" else "bad")),
        tag("td", badge(availability, "ok" if availability == "active" else "warn")),
        tag("td", join([tag("code", f"{k}={v}") for k, v in sorted(labels.items())], " ")),
        class_=None if state == "ready" else "row-warn",
        data_node=node.get("hostname"),
    )


def nodes(data: Doc) -> Html:
    found: Sequence[Doc] = data.get("nodes") or ()
    lease = data.get("lease") or {}
    if len(found) < 2 and not lease:
        return Html("")
    agent_node = lease.get("node", "") if lease.get("holder") else ""
    ready = sum(1 for n in found if n.get("state") == "ready")
    head = tag("tr", *(tag("th", h) for h in _COLUMNS))
    table = tag(
        "table",
        tag("thead", head),
        tag("tbody", join([_row(n, agent_node) for n in found])),
        class_="grid",
        id="nodes",
    )
    return tag(
        "section",
        tag("h2", "Nodes ", tag("span", f"{ready} of {len(found)} ready", class_="muted small")),
        tag("div", table, class_="scroll"),
    )
