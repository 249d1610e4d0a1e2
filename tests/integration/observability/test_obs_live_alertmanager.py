"""Alerts through a real Alertmanager (Debian's 0.25) with the production routes, receivers,
inhibitions and templates: what reaches Slack, Discord and e-mail, what is inhibited, and the
resolved notifications. Slack's and Discord's webhooks and the mail relay are local sinks that
record what Alertmanager really sends."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from obs_support import lab as lab_module
from obs_support.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def am(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab_module.Lab, SmtpSink]]:
    smtp = SmtpSink()
    workdir: Path = tmp_path_factory.mktemp("alertmanager-lab")
    with lab_module.lab(workdir, "", "") as the_lab:
        the_lab.start_alertmanager(smarthost=f"127.0.0.1:{smtp.port}", fast_groups=True)
        yield the_lab, smtp
    smtp.close()


def post_alerts(lab: lab_module.Lab, alerts: list[dict[str, Any]]) -> None:
    url = f"http://{lab.targets['alertmanager'][0]}/api/v2/alerts"
    req = urllib.request.Request(
        url, data=json.dumps(alerts).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
        assert resp.status == 200


def alert(name: str, severity: str, ends: datetime | None = None, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, "severity": severity, "environment": "production", **labels},
        "annotations": {
            "summary": f"{name} summary",
            "description": f"{name} description",
            "runbook_url": f"runbooks/alerts.md#{name.lower()}",
        },
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (ends or now + timedelta(minutes=10)).isoformat(),
    }


def posts(lab: lab_module.Lab, path: str, text: str) -> list[dict[str, Any]]:
    assert lab.sink is not None
    return [body for p, body in lab.sink.requests if p == path and text in json.dumps(body)]


def test_a_critical_alert_reaches_slack_discord_and_email(
    am: tuple[lab_module.Lab, SmtpSink],
) -> None:
    lab, smtp = am
    post_alerts(lab, [alert("ApiDown", "critical")])
    lab_module.wait_until(
        "ApiDown on Slack, Discord and e-mail",
        lambda: bool(
            posts(lab, "/slack", "ApiDown")
            and posts(lab, "/discord", "ApiDown")
            and any("ApiDown" in (m["Subject"] or "") for m in smtp.messages)
        ),
        timeout=30,
    )
    slack = posts(lab, "/slack", "ApiDown")[0]
    attachment = slack["attachments"][0]
    assert attachment["title"].startswith("[FIRING:1] ApiDown (production)")
    assert "ApiDown summary" in attachment["text"]
    assert "runbooks/alerts.md#apidown" in attachment["text"]
    assert slack["channel"] == "#incidents"
    discord = posts(lab, "/discord", "ApiDown")[0]
    assert "ApiDown summary" in json.dumps(discord)
    mail = next(m for m in smtp.messages if "ApiDown" in (m["Subject"] or ""))
    assert mail["To"] == "oncall@example.org"
    body = "".join(
        part.get_payload(decode=True).decode()
        for part in mail.walk()
        if part.get_content_type() in ("text/html", "text/plain")
    )
    assert "runbooks/alerts.md#apidown" in body


def test_a_warning_goes_to_slack_and_discord_but_not_email(
    am: tuple[lab_module.Lab, SmtpSink],
) -> None:
    lab, smtp = am
    post_alerts(lab, [alert("HostHighCpu", "warning", instance="n1")])
    lab_module.wait_until(
        "HostHighCpu on Slack and Discord",
        lambda: bool(posts(lab, "/slack", "HostHighCpu") and posts(lab, "/discord", "HostHighCpu")),
        timeout=30,
    )
    assert posts(lab, "/slack", "HostHighCpu")[0]["channel"] == "#alerts"
    assert not any("HostHighCpu" in (m["Subject"] or "") for m in smtp.messages)


def test_node_down_inhibits_target_down(am: tuple[lab_module.Lab, SmtpSink]) -> None:
    lab, _ = am
    post_alerts(
        lab,
        [
            alert("NodeDown", "critical", instance="10.0.0.2:9100", job="node-exporter"),
            alert("TargetDown", "warning", instance="10.0.1.5:3000", job="api"),
        ],
    )
    url = f"http://{lab.targets['alertmanager'][0]}/api/v2/alerts"

    def target_down_inhibited() -> bool:
        alerts = json.loads(lab_module.http_get(url))
        (target,) = [a for a in alerts if a["labels"]["alertname"] == "TargetDown"]
        return bool(target["status"]["inhibitedBy"])

    lab_module.wait_until("TargetDown inhibited by NodeDown", target_down_inhibited, timeout=15)
    lab_module.wait_until("NodeDown on Slack", lambda: bool(posts(lab, "/slack", "NodeDown")))
    time.sleep(3)  # longer than group_wait + group_interval here: TargetDown had its chance
    assert not posts(lab, "/slack", "TargetDown")
    assert not posts(lab, "/discord", "TargetDown")


def test_resolved_notifications_are_sent(am: tuple[lab_module.Lab, SmtpSink]) -> None:
    lab, _ = am
    post_alerts(lab, [alert("RedisDown", "critical", instance="r:9121")])
    lab_module.wait_until("RedisDown firing", lambda: bool(posts(lab, "/slack", "RedisDown")))
    post_alerts(
        lab,
        [
            alert(
                "RedisDown",
                "critical",
                instance="r:9121",
                ends=datetime.now(UTC) - timedelta(seconds=1),
            )
        ],
    )
    lab_module.wait_until(
        "RedisDown resolved on Slack and Discord",
        lambda: bool(
            posts(lab, "/slack", "[RESOLVED] RedisDown")
            and posts(lab, "/discord", "[RESOLVED] RedisDown")
        ),
        timeout=30,
    )
