"""The agent's HTTP API, webhooks and notifications, driven as a user would: a real
``reconciler run`` process, a real bare git repository, the real Swarm, and a local receiver
playing Slack, Discord and a generic webhook. The tests run in order on one agent."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
from web_support.payloads import check_discord, check_slack, check_webhook

from reconciler.web.auth import github_signature

from .conftest import Env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SCHEMAS = files("reconciler.web") / "static"


def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return data


def _kinds(env: Env, channel: str) -> list[str]:
    out = []
    for request in env.receiver.to(f"/{channel}"):
        if channel == "webhook":
            out.append(request.body["kind"])
        elif channel == "slack":
            out.append(request.body["blocks"][-1]["elements"][0]["text"].split(" · ")[-2])
        else:
            out.append(request.body["embeds"][0]["footer"]["text"].split(" · ")[-1])
    return out


def _hook(env: Env, event: str, body: dict[str, Any], signature: str | None) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "d-1",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    status, _, answer = env.agent.request("POST", "/hooks/github", raw, headers)
    return status, json.loads(answer)


def _signed(env: Env, body: dict[str, Any]) -> str:
    return github_signature(env.agent.webhook_secret, json.dumps(body).encode())


def _quiet(env: Env, since: str | None, seconds: float = 1.5) -> None:
    """Nothing ran: no pass ended after ``since`` for a while."""
    time.sleep(seconds)
    assert env.agent.last_pass() == since


def test_status_json_matches_the_first_deploy(web_env: Env) -> None:
    env = web_env
    head = env.remote.head()
    status = env.agent.status()
    jsonschema.validate(status, _schema("status"))
    first = status["history"][-1]
    assert first["result"] == "success"
    assert first["trigger"] == "startup"
    assert first["revision"]["sha"] == head
    assert first["services"] == ["web"]
    assert status["desired"]["sha"] == head
    assert status["desired"]["subject"] == "Deploy web"
    assert status["desired"]["author"].startswith("Alice Operator")
    assert status["last_applied"]["sha"] == head
    (web,) = status["inventory"]
    assert web["name"] == "web"
    assert web["in_sync"] is True
    assert (web["replicas_desired"], web["replicas_running"]) == (1, 1)
    assert web["image"].startswith(env.image.split(":")[0])
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] is True
    assert status["source"] == {
        "repository": f"file://{env.remote.bare}",
        "web_url": None,
        "branch": "main",
        "path": "desired-state/test",
    }
    history = env.agent.get("/api/history?limit=1")
    jsonschema.validate(history, _schema("history"))
    assert history["count"] == 1
    assert history["history"][0] == status["history"][0]
    assert env.agent.request("GET", "/api/history?limit=x")[0] == 400
    # the success was announced once on every channel, each in its own format
    slack = env.receiver.wait_for("/slack", 1)[0].body
    text = check_slack(slack)
    assert f"<https://github.com/acme/driftless/commit/{head}|{head[:12]}>" in text
    assert "Deployed" in text
    assert env.agent.stack in text
    assert "test" in text
    assert "web" in text
    discord = check_discord(env.receiver.wait_for("/discord", 1)[0].body)
    assert f"[`{head[:12]}`](https://github.com/acme/driftless/commit/{head})" in discord
    hook = env.receiver.wait_for("/webhook", 1)[0].body
    check_webhook(hook)
    assert hook["kind"] == "deploy_succeeded"
    assert hook["revision"]["sha"] == head


def test_actions_need_the_token(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    for path in ("/api/sync", "/api/pause", "/api/resume", f"/api/quarantine/{'a' * 40}/release"):
        status, body = env.agent.post(path)
        assert status == 401, path
        assert "token" in body["error"]
        status, _ = env.agent.post(path, token="not-the-token")
        assert status == 401, path
    _, headers, _ = env.agent.request("POST", "/api/sync")
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert env.agent.status()["paused"] is False
    _quiet(env, since)


def test_webhooks_with_a_bad_or_missing_signature_do_nothing(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    push = {"ref": "refs/heads/main", "after": "0" * 40}
    assert _hook(env, "push", push, None)[0] == 401
    assert _hook(env, "push", push, "sha256=" + "0" * 64)[0] == 401
    wrong_key = _signed(env, push).replace("a", "b").replace("1", "2")
    assert _hook(env, "push", push, wrong_key)[0] == 401
    # correctly signed, but not for us: accepted and ignored
    assert _hook(env, "ping", {"zen": "hi"}, _signed(env, {"zen": "hi"})) == (
        200,
        {"ok": True, "message": "pong"},
    )
    other = {"ref": "refs/heads/feature", "after": "1" * 40}
    status, body = _hook(env, "push", other, _signed(env, other))
    assert status == 202
    assert "ignored" in body["message"]
    status, body = _hook(env, "issues", push, _signed(env, push))
    assert status == 202
    assert "ignored" in body["message"]
    # GitLab: the token header
    raw = json.dumps(push).encode()
    gl = {"X-Gitlab-Event": "Push Hook", "Content-Type": "application/json"}
    assert env.agent.request("POST", "/hooks/gitlab", raw, gl)[0] == 401
    assert env.agent.request("POST", "/hooks/gitlab", raw, {**gl, "X-Gitlab-Token": "x"})[0] == 401
    gl_other = json.dumps(other).encode()
    assert (
        env.agent.request(
            "POST", "/hooks/gitlab", gl_other, {**gl, "X-Gitlab-Token": env.agent.gitlab_token}
        )[0]
        == 202
    )
    _quiet(env, since)


def test_a_push_webhook_starts_a_pass_within_two_seconds(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    head = env.remote.commit({"NOTES.md": "release notes\n"}, "Add release notes")
    push = {"ref": "refs/heads/main", "after": head, "repository": {"full_name": "acme/x"}}
    sent = time.time()
    status, body = _hook(env, "push", push, _signed(env, push))
    assert status == 202
    assert body["queued"] is True
    after = env.agent.wait_pass(since, "the webhook's pass")
    entry = after["history"][0]
    assert entry["trigger"] == "webhook"
    assert entry["revision"]["sha"] == head
    started = datetime.fromisoformat(entry["started_at"].replace("Z", "+00:00")).timestamp()
    delay = started - sent
    print(f"push webhook -> pass start: {delay * 1000:.0f} ms")
    assert delay < 2.0
    # a GitLab push to the branch wakes it too
    since = after["last_pass_at"]
    raw = json.dumps({"ref": "refs/heads/main"}).encode()
    status, _, _ = env.agent.request(
        "POST",
        "/hooks/gitlab",
        raw,
        {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": env.agent.gitlab_token},
    )
    assert status == 202
    s = env.agent.wait_pass(since, "the GitLab pass")
    assert s["history"][0]["count"] == 2  # the same no-op, merged


def test_sync_now_pause_and_resume_with_the_token(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    status, body = env.agent.post("/api/sync", token=env.agent.token)
    assert status == 202
    assert body["ok"] is True
    s = env.agent.wait_pass(since, "the manual pass")
    assert s["history"][0]["trigger"] == "manual"

    status, _, _ = env.agent.request(
        "POST",
        "/api/pause",
        json.dumps({"reason": "release freeze"}).encode(),
        {"Authorization": f"Bearer {env.agent.token}", "Content-Type": "application/json"},
    )
    assert status == 202
    s = env.agent.status()
    assert s["paused"] is True
    assert s["paused_reason"] == "release freeze"
    assert "Paused" in env.agent.get("/?part=content") or s["phase"]
    since = s["last_pass_at"]
    status, body = env.agent.post("/api/resume", token=env.agent.token)
    assert status == 202
    s = env.agent.wait_pass(since, "the resume pass")
    assert s["paused"] is False
    assert s["history"][0]["trigger"] == "resume"


def test_a_failed_deploy_is_rolled_back_reverted_and_announced(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    bad = env.remote.commit(
        {"stack.yml": env.stack_yml(["python3", "-c", "import sys; sys.exit(3)"])},
        "Break web on purpose",
    )
    assert env.agent.post("/api/sync", token=env.agent.token)[0] == 202
    s = env.agent.wait_pass(since, "the failed pass", timeout=150)
    entry = s["history"][0]
    assert entry["revision"]["sha"] == bad
    assert entry["result"] == "rolled_back", entry
    assert s["quarantine"][0]["revision"]["sha"] == bad
    revert = s["reverts"][0]
    assert revert["revision"]["sha"] == bad
    assert env.remote.log()[0].startswith(revert["commit"])
    (web,) = s["inventory"]
    assert web["replicas_running"] == 1
    # the page lists the quarantined revision and the revert, newest pass first
    page = env.agent.get("/")
    quarantine = page.split('id="quarantine"', 1)[1].split('id="reverts"', 1)[0]
    assert bad[:12] in quarantine
    assert "Break web on purpose" in quarantine
    reverts = page.split('id="reverts"', 1)[1]
    assert f"{revert['commit'][:12]}</code></a> reverts" in reverts
    history = page.split('id="history"', 1)[1].split("</tr>", 2)[1]  # the first row
    assert bad[:12] in history
    assert "rolled back" in history
    for channel in ("slack", "discord", "webhook"):
        env.receiver.wait_for(f"/{channel}", 3)
    hooks = [r.body for r in env.receiver.to("/webhook")]
    failed = next(h for h in hooks if h["kind"] == "deploy_failed")
    assert failed["revision"]["sha"] == bad
    assert failed["revision"]["url"] == f"https://github.com/acme/driftless/commit/{bad}"
    assert failed["services"] == ["web"]
    reverted = next(h for h in hooks if h["kind"] == "revert_pushed")
    assert any(link["url"].endswith(revert["commit"]) for link in reverted["links"])
    slack = [check_slack(r.body) for r in env.receiver.to("/slack")]
    assert any("failed" in t and bad[:12] in t and "rolled back" in t for t in slack)
    discord = [check_discord(r.body) for r in env.receiver.to("/discord")]
    assert any("Reverted" in t and revert["commit"][:12] in t for t in discord)


def test_recovery_is_announced_once(web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    assert env.agent.post("/api/sync", token=env.agent.token)[0] == 202
    s = env.agent.wait_pass(since, "the pass after the revert", timeout=120)
    assert next(c for c in s["conditions"] if c["type"] == "Ready")["status"] is True
    for channel in ("slack", "discord", "webhook"):  # deploy, failure, revert, recovery
        env.receiver.wait_for(f"/{channel}", 4)
    kinds = [r.body["kind"] for r in env.receiver.to("/webhook")]
    assert kinds.count("recovered") == 1
    assert kinds.count("deploy_failed") == 1
    # another pass with nothing new: no message at all
    before = len(env.receiver.requests)
    since = s["last_pass_at"]
    assert env.agent.post("/api/sync", token=env.agent.token)[0] == 202
    env.agent.wait_pass(since, "a quiet pass")
    time.sleep(0.5)
    assert len(env.receiver.requests) == before


def test_drift_is_reported_with_secret_values_masked(web_env: Env) -> None:
    env = web_env
    live_secret = "live-db-password-9d3e7a"
    subprocess.run(
        [
            "docker",
            "service",
            "update",
            "--quiet",
            "--detach",
            "--env-add",
            f"DB_PASSWORD={live_secret}",
            f"{env.agent.stack}_web",
        ],
        check=True,
        capture_output=True,
    )
    since = env.agent.last_pass()
    assert env.agent.post("/api/sync", token=env.agent.token)[0] == 202
    s = env.agent.wait_pass(since, "the drift pass")
    (web,) = s["inventory"]
    assert web["in_sync"] is False
    fields = {d["field"]: d for d in web["drift"]}
    assert fields["env.DB_PASSWORD"]["live"] == "***"
    assert fields["env.DB_PASSWORD"]["desired"] == "***"
    raw = json.dumps(s)
    assert live_secret not in raw
    drift = next(
        r.body for r in env.receiver.wait_for("/webhook", 5) if r.body["kind"] == "drift_detected"
    )
    assert "env.DB_PASSWORD" in json.dumps(drift)
    for request in env.receiver.requests:
        assert live_secret not in json.dumps(request.body)
    page = env.agent.get("/")
    assert "env.DB_PASSWORD" in page
    assert live_secret not in page


def test_metrics_and_health(web_env: Env) -> None:
    env = web_env
    text = env.agent.get("/metrics")
    sent = len(env.receiver.to("/slack"))
    stack = env.agent.stack
    assert (
        f'reconciler_notifications_total{{channel="slack",environment="test",result="sent",'
        f'stack="{stack}"}} {sent}.0' in text
    )
    assert "reconciler_passes_total{" in text
    assert 'route="/api/sync",stack="' in text
    assert 'status="401"' in text
    hooks = 'reconciler_webhooks_total{{environment="test",result="{}",source="github",stack="{}"}}'
    assert f"{hooks.format('rejected', stack)} 3.0" in text
    assert f"{hooks.format('accepted', stack)} 1.0" in text
    health = env.agent.get("/healthz")
    assert health["status"] == "ok"
    assert env.agent.request("GET", "/healthz")[0] == 200


def test_no_secret_in_the_logs_page_or_json(web_env: Env) -> None:
    env = web_env
    shown = env.agent.get("/") + json.dumps(env.agent.status()) + env.agent.get("/metrics")
    log = env.agent.log.read_text()
    assert "status page and API on http://127.0.0.1" in log
    for secret in env.secrets:
        assert secret not in shown, secret
        assert secret not in log, secret
