"""The status page's rollout section: the running rollout (or the last one), which wave it is
in, each canary's step, and every analysis with its last value, its condition and how its
measurements went; why the rollout stopped, when it did."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.web.html import Html, join, tag
from reconciler.web.pieces import Doc

_COLUMNS = ("Analysis", "Value", "Condition", "Last", "Measurements")
_TONE = {
    "waiting": "busy",
    "analysing": "busy",
    "passed": "ok",
    "failed": "bad",
    "inconclusive": "warn",
}


def _value(analysis: Doc) -> str:
    value = analysis.get("value")
    if value is None:
        return analysis.get("detail") or "no value yet"
    return f"{float(value):.4g}"


def _analysis(analysis: Doc) -> Html:
    counts = (
        f"{analysis.get('successful', 0)} ok, {analysis.get('failed', 0)} failed "
        f"(limit {analysis.get('failure_limit', 0)}), "
        f"{analysis.get('inconclusive', 0)} inconclusive"
    )
    outcome = analysis.get("outcome") or "not measured"
    return tag(
        "tr",
        tag("td", tag("code", analysis.get("name", ""))),
        tag("td", _value(analysis)),
        tag("td", tag("code", analysis.get("condition", ""))),
        tag("td", tag("span", outcome, class_=f"badge {_TONE.get(outcome, 'idle')}")),
        tag("td", counts, class_="muted small"),
        data_analysis=analysis.get("name"),
    )


def _canary(canary: Doc) -> Html:
    step = str(canary.get("step", ""))
    analyses: Sequence[Doc] = canary.get("analyses") or ()
    head = tag("tr", *(tag("th", h) for h in _COLUMNS))
    body = tag("tbody", join(_analysis(a) for a in analyses))
    table = tag("table", tag("thead", head), body, class_="grid") if analyses else ""
    return tag(
        "div",
        tag(
            "h3",
            f"{canary.get('service', '')} canary ",
            tag("span", step, class_=f"badge {_TONE.get(step, 'idle')}"),
        ),
        tag("p", canary.get("message", ""), class_="muted"),
        table,
        class_="canary",
        data_canary=canary.get("service"),
    )


def rollout(data: Doc) -> Html:
    """Nothing until a pass has rolled something out."""
    current: Doc | None = data.get("rollout")
    if not current:
        return Html("")
    wave = f"wave {current.get('wave', 0)} of {current.get('waves', 0)}"
    services = ", ".join(current.get("services") or ())
    stopped = current.get("stopped") or ""
    canaries: Sequence[Doc] = current.get("canaries") or ()
    return tag(
        "section",
        tag("h2", "Rollout ", tag("span", f"{wave}: {services}", class_="muted small")),
        tag("p", f"Stopped: {stopped}", class_="bad-text") if stopped else "",
        join(_canary(c) for c in canaries),
        id="rollout",
    )
