"""The agent behind the production nginx, as on the VM: the real ``nginx/nginx.conf`` (Debian's
nginx on loopback, see web_support.edge) in front of the package's real ``reconciler run``
process. GitHub and GitLab reach ``/hooks/*`` without a password and their signed bodies arrive
intact; people reach the status page and JSON API under ``/deploy/`` with the monitoring basic
auth, and every link, asset, form and script call of the page stays under that prefix.

Runs after test_agent_web.py (whose metric counts it would otherwise change)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from web_support.edge import Edge, links, start_edge

from reconciler.web.auth import github_signature

from .conftest import Env, open_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PREFIX = "/deploy/"


@pytest.fixture(scope="module")
def edge(web_env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    running = start_edge(
        tmp_path_factory.mktemp("edge"),
        reconciler=f"127.0.0.1:{web_env.agent.port}",
        password=f"monitoring-{os.urandom(6).hex()}",
    )
    try:
        yield running
    finally:
        running.stop()


def _github(edge: Edge, env: Env, event: str, raw: bytes, signature: str | None) -> tuple[int, Any]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"delivery-{os.urandom(4).hex()}",
        "User-Agent": "GitHub-Hookshot/test",
    }
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    resp = edge.request("POST", "/hooks/github", raw, headers)
    return resp.status, resp.body


def test_a_signed_github_push_through_nginx_starts_a_pass(edge: Edge, web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    head = env.remote.commit({"NOTES.md": "through the edge\n"}, "Note the edge")
    # a body whose bytes a proxy could easily alter: CRLF line ends, non-ASCII text, trailing
    # blanks. The agent checks the HMAC of the bytes it receives.
    payload = {"ref": "refs/heads/main", "after": head, "head_commit": {"message": "Zürich ✓"}}
    text = json.dumps(payload, ensure_ascii=False, indent=2).replace("\n", "\r\n")
    raw = text.encode() + b"\r\n  "
    status, body = _github(edge, env, "push", raw, github_signature(env.agent.webhook_secret, raw))
    assert status == 202, body
    assert json.loads(body)["queued"] is True
    after = env.agent.wait_pass(since, "the pass of the webhook sent through nginx")
    assert after["history"][0]["trigger"] == "webhook"
    assert after["history"][0]["revision"]["sha"] == head

    # a forged one is refused by the agent, and nothing runs
    since = after["last_pass_at"]
    forged = raw.replace(b"main", b"evil")
    status, body = _github(edge, env, "push", forged, github_signature("guess", forged))
    assert status == 401, body
    assert status == _github(edge, env, "push", raw, None)[0]
    assert env.agent.last_pass() == since


def test_a_gitlab_push_through_nginx_starts_a_pass(edge: Edge, web_env: Env) -> None:
    env = web_env
    since = env.agent.last_pass()
    head = env.remote.commit({"NOTES.md": "through the edge, from GitLab\n"}, "Note GitLab")
    raw = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "after": head}).encode()
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook"}
    assert edge.request("POST", "/hooks/gitlab", raw, headers).status == 401
    resp = edge.request(
        "POST", "/hooks/gitlab", raw, {**headers, "X-Gitlab-Token": env.agent.gitlab_token}
    )
    assert resp.status == 202, resp.body
    after = env.agent.wait_pass(since, "the pass of the GitLab webhook sent through nginx")
    assert after["history"][0]["revision"]["sha"] == head


def test_the_webhook_locations_take_small_posts_only(edge: Edge, web_env: Env) -> None:
    for path in ("/hooks/github", "/hooks/gitlab"):
        assert edge.get(path).status == 403, path
        assert edge.request("PUT", path, b"{}").status == 403, path
        big = b'{"ref": "refs/heads/main", "pad": "' + b"x" * (1024 * 1024) + b'"}'
        assert edge.request("POST", path, big).status == 413, path
    # only these two paths: the rest of the agent is not public
    assert edge.request("POST", "/hooks/").status != 202
    assert edge.get("/hooks/github/../../deploy/api/status").status == 401
    # the agent counted none of the refused ones (nginx answered them itself)
    metrics = edge.get(PREFIX + "metrics", auth=edge.login).text()
    assert 'method="PUT"' not in metrics
    assert "413" not in [line.split('status="')[-1][:3] for line in metrics.splitlines()]


def test_the_status_page_and_api_need_the_monitoring_login(edge: Edge, web_env: Env) -> None:
    for path in (PREFIX, PREFIX + "api/status", PREFIX + "api/history", PREFIX + "metrics"):
        resp = edge.get(path)
        assert resp.status == 401, path
        assert resp.headers["www-authenticate"].startswith("Basic"), path
        assert edge.get(path, auth=(edge.user, "wrong")).status == 401, path
    status = json.loads(edge.get(PREFIX + "api/status", auth=edge.login).body)
    assert status["stack"] == web_env.agent.stack
    history = json.loads(edge.get(PREFIX + "api/history?limit=1", auth=edge.login).body)
    assert history["count"] == 1
    # /deploy without the slash is sent to the page
    resp = edge.get(PREFIX.rstrip("/"), auth=edge.login)
    assert resp.status == 301
    assert urllib.parse.urlsplit(resp.headers["location"]).path == PREFIX


def test_every_link_asset_and_form_of_the_page_stays_under_the_prefix(
    edge: Edge, web_env: Env
) -> None:
    env = web_env
    page = edge.get(PREFIX, auth=edge.login)
    assert page.status == 200
    html = page.text()
    assert env.agent.stack in html
    found = links(html)
    base = edge.base + PREFIX
    local = []
    for attr, urls in found.items():
        for url in urls:
            absolute = urllib.parse.urljoin(base, url)
            if urllib.parse.urlsplit(absolute).netloc != urllib.parse.urlsplit(base).netloc:
                continue  # commit and repository links on the forge
            parts = urllib.parse.urlsplit(absolute)
            assert parts.path.startswith(PREFIX), f"{attr}={url!r} leaves {PREFIX}: {parts.path}"
            local.append((attr, parts.path + (f"?{parts.query}" if parts.query else "")))
    kinds = {attr for attr, _ in local}
    assert {"href", "src", "action", "data-api"} <= kinds, found
    for attr, path in local:
        if attr in ("href", "src"):
            resp = edge.get(path, auth=edge.login)
            assert resp.status == 200, (attr, path, resp.status)
    # the script refreshes the page with a relative "?part=content"
    assert '"?part=content"' in edge.get(PREFIX + "static/app.js", auth=edge.login).text()
    part = edge.get(PREFIX + "?part=content", auth=edge.login)
    assert part.status == 200
    assert part.text().lstrip().startswith("<main")

    # the forms work without the script: Sync now with the token in the form, then back to the
    # page (a browser follows the 303)
    since = env.agent.last_pass()
    action = next(path for attr, path in local if attr == "action" and path.endswith("/sync"))
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}
    denied = edge.request("POST", action, b"token=wrong", form, auth=edge.login)
    assert denied.status == 401
    body = urllib.parse.urlencode({"token": env.agent.token + "\n"}).encode()
    done = edge.request("POST", action, body, form, auth=edge.login)
    assert done.status == 303, done.body
    back = urllib.parse.urljoin(edge.base + action, done.headers["location"])
    assert urllib.parse.urlsplit(back).path == PREFIX
    after = env.agent.wait_pass(since, "the pass started by the form behind nginx")
    assert after["history"][0]["trigger"] == "manual"
    # the basic auth password never reaches the page, the token never the access log
    assert edge.password not in edge.get(PREFIX, auth=edge.login).text()
    assert not [line for line in edge.access_lines() if env.agent.token in line]


@pytest.mark.browser
def test_the_page_behind_nginx_in_a_browser(
    edge: Edge, web_env: Env, browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    env = web_env
    # log in as a person would: the browser answers nginx's basic auth challenge once (here
    # with the credentials in the address of a first request) and then keeps the credentials
    # for every request of the page, its refresh and its actions
    url = edge.base + PREFIX
    open_page(browser, url.replace("https://", f"https://{edge.user}:{edge.password}@") + "healthz")
    assert '"status"' in browser.page_source
    open_page(browser, url)  # the page's own address carries no credentials
    # the page replaces its content every second: read it inside waits
    wait = WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException])
    wait.until(lambda d: env.agent.stack in d.title)
    wait.until(
        lambda d: (
            [
                row.get_attribute("data-service")
                for row in d.find_elements(By.CSS_SELECTOR, "#services tbody tr")
            ]
            == ["web"]
        )
    )

    # Sync now through nginx: the token travels in the form body, the basic auth stays
    since = env.agent.last_pass()
    browser.find_element(By.ID, "token").send_keys(env.agent.token)
    browser.find_element(By.ID, "sync-now").click()

    def answered(d: webdriver.Chrome) -> bool:
        text: str = d.find_element(By.ID, "action-result").text
        if text.startswith("request failed"):  # the fetch was dropped (ERR_NETWORK_CHANGED)
            d.find_element(By.ID, "sync-now").click()
            return False
        assert "token" not in text, text  # "token rejected": the token did not arrive
        return "queued" in text

    wait.until(answered)
    after = env.agent.wait_pass(since, "the pass started from the page behind nginx")
    assert after["history"][0]["trigger"] == "manual"
    shown = after["last_pass_at"][:19] + "Z"
    wait.until(  # the page refreshed itself through nginx
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#hero .facts time").get_attribute("datetime") == shown
            and d.find_element(By.ID, "conn").text == ""
        )
    )

    browser.save_screenshot(str(artifacts_dir / "reconciler-status-page-behind-nginx.png"))
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources
    assert all(r.startswith(url) for r in resources), resources


def test_webhooks_are_rate_limited_per_address(edge: Edge, web_env: Env) -> None:
    # last: the limit then holds for this address for a few seconds. Signed pings: the agent
    # answers them without starting a pass.
    raw = b'{"zen": "Keep it logically awesome."}'
    signature = github_signature(web_env.agent.webhook_secret, raw)
    started = time.monotonic()
    answers = [_github(edge, web_env, "ping", raw, signature)[0] for _ in range(40)]
    elapsed = time.monotonic() - started
    assert answers[0] == 200
    assert set(answers) == {200, 429}, answers
    # burst 20 + the first request, plus what 2 r/s refilled while the 40 were sent
    allowed = 21 + int(2 * elapsed) + 1
    assert answers.count(200) <= allowed, (answers, elapsed)
    assert answers.count(429) >= 5, (answers, elapsed)
