"""Alloy's parsing of the real log lines the services write.

Alloy cannot run here. What it would do with a line is decided by the `stage.json` JMESPath
expressions and selectors in observability/alloy/config.alloy; this test evaluates those
expressions with the reference JMESPath implementation on the lines the lab's reconciler, API and
Nginx really wrote, and checks the RE2-compatible pattern the Security dashboard uses to pull the
exception type out of a traceback against real Python tracebacks.
"""

from __future__ import annotations

import json
import re
import traceback
from typing import Any

import jmespath
import pytest
from obs_support import alloy_syntax, files
from obs_support.lab import Lab

pytestmark = pytest.mark.slow

LEVELS = {"trace", "debug", "info", "success", "warning", "warn", "error", "critical"}


def json_stages() -> list[tuple[str, dict[str, str]]]:
    """(service regex of the stage.match selector, stage.json expressions)."""
    root = alloy_syntax.parse(files.ALLOY_CONFIG.read_text())
    (process,) = [b for b in root.blocks if b.name == "loki.process"]
    found = []
    for match in process.children("stage.match"):
        m = re.fullmatch(r'\{service=~"(.+)"\}', match.attrs["selector"])
        if not m:
            continue
        for stage in match.children("stage.json"):
            found.append((m.group(1), stage.attrs["expressions"]))
    return found


def expressions_for(service: str) -> dict[str, str]:
    for pattern, expressions in json_stages():
        if re.fullmatch(pattern, service):
            return expressions
    raise AssertionError(f"no stage.json applies to service {service}")


def json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def extract(service: str, line: dict[str, Any]) -> dict[str, Any]:
    return {name: jmespath.search(expr, line) for name, expr in expressions_for(service).items()}


def test_reconciler_lines_yield_a_level_and_their_revision(monitoring_lab: Lab) -> None:
    """The reconciler's JSON lines, as its container writes them and as reconciler.service
    writes them to the journal (loki.source.journal passes the MESSAGE field, the same line)."""
    log = monitoring_lab.workdir / "reconciler.log"
    if not log.exists():
        pytest.skip("the reconciler does not run in this lab (no Docker Swarm)")
    lines = json_lines(log.read_text())
    assert len(lines) >= 3
    for line in lines:
        fields = extract("driftless_reconciler", line)
        assert str(fields["level"]).lower() in LEVELS, line
        # structured metadata: the revision where the line has one, nothing where it is null
        assert fields["revision"] == line.get("revision"), line
    assert [line for line in lines if line.get("revision")], "no line names a revision"


def test_api_lines_yield_a_level_and_requests_a_trace_id(monitoring_lab: Lab) -> None:
    logs = sorted(monitoring_lab.workdir.glob("api-*.log"))
    if not logs:
        pytest.skip("the API is not installed in this checkout")
    lines = [line for log in logs for line in json_lines(log.read_text())]
    requests = [line for line in lines if "status" in line and "route" in line]
    assert requests, "no request log lines from the API"
    for line in lines:
        assert str(extract("driftless_api", line)["level"]).lower() in LEVELS, line
    for line in requests:
        assert extract("driftless_api", line)["trace_id"], line


def test_nginx_access_lines_yield_status_and_trace_id(monitoring_lab: Lab) -> None:
    assert monitoring_lab.nginx_access_log is not None
    lines = json_lines(monitoring_lab.nginx_access_log.read_text())
    assert lines
    for line in lines:
        fields = extract("driftless_nginx", line)
        assert isinstance(fields["status"], int), line
        assert re.fullmatch(r"[0-9a-f]{32}", fields["trace_id"]), line


def test_the_exception_type_pattern_reads_real_tracebacks() -> None:
    dashboard = json.loads((files.DASHBOARDS_DIR / "security-logs.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    (query,) = [e for e in exprs if "error_type" in e]
    pattern = re.search(r"\| regexp `([^`]+)`", query).group(1)  # type: ignore[union-attr]

    def last_type(exc: BaseException) -> str | None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        m = re.search(pattern, text)
        return m.group("error_type") if m else None

    with pytest.raises(json.JSONDecodeError) as decode_error:
        json.loads("{not json")
    assert last_type(decode_error.value) == "json.decoder.JSONDecodeError"
    with pytest.raises(KeyError) as key_error:
        _ = {}["x"]
    assert last_type(key_error.value) == "KeyError"
    # the reconciler writes "Type: message" on one line
    m = re.search(pattern, "ApplyError: docker stack deploy failed: exit 1")
    assert m
    assert m.group("error_type") == "ApplyError"
