"""The status page in a real headless Chromium (Debian's chromium + chromedriver), served by a
real agent: it shows the services and the passes, "Sync now" runs a pass, nothing secret is in
the page, and nothing is loaded from anywhere but the agent. A screenshot is kept in
``.cache/artifacts/``."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import Env, open_page

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

#: the page replaces its content as it refreshes itself: an element found may be gone when read
REFRESHED = (StaleElementReferenceException,)


def test_the_status_page_shows_the_agent_and_syncs(
    web_env: Env, browser: webdriver.Chrome, artifacts_dir: Path
) -> None:
    env = web_env
    status = env.agent.status()
    open_page(browser, env.agent.url + "/")
    assert env.agent.stack in browser.title

    services = browser.find_elements(By.CSS_SELECTOR, "#services tbody tr")
    assert [row.get_attribute("data-service") for row in services] == ["web"]
    cells = services[0].find_elements(By.TAG_NAME, "td")
    assert "1/1" in cells[3].text  # replicas running/desired
    history = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(history) == min(15, len(status["history"]))
    assert status["history"][0]["revision"]["sha"][:12] in history[0].text
    label = browser.find_element(By.ID, "state-label").text
    assert label in ("Ready", "Not ready", "Reconciling", "Paused", "Stalled")

    # "Sync now" with the API token runs a pass, and the page shows it without a reload
    since = env.agent.last_pass()
    browser.find_element(By.ID, "token").send_keys(env.agent.token)
    browser.find_element(By.ID, "sync-now").click()
    WebDriverWait(browser, 10, ignored_exceptions=REFRESHED).until(
        lambda d: "queued" in d.find_element(By.ID, "action-result").text
    )
    after = env.agent.wait_pass(since, "the pass started from the page")
    assert after["history"][0]["trigger"] == "manual"
    shown = after["last_pass_at"][:19] + "Z"
    # the page refreshed itself with that pass
    WebDriverWait(browser, 10, ignored_exceptions=REFRESHED).until(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#hero .facts time").get_attribute("datetime") == shown
            and d.find_element(By.ID, "state-label").text != "Reconciling"
        )
    )
    # the token is remembered in this browser only, and the field hides
    assert not browser.find_element(By.ID, "token-field").is_displayed()

    browser.save_screenshot(str(artifacts_dir / "reconciler-status-page.png"))
    html = browser.page_source
    for secret in env.secrets:
        assert secret not in html, secret
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources
    assert all(url.startswith(env.agent.url) for url in resources), resources
