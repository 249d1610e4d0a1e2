"""One real agent for the package (the API tests, then the browser test): ``reconciler run`` on
a real bare git repository and the real Swarm, with a local receiver playing Slack, Discord and a
generic webhook."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from web_support.agent import AgentProcess, Remote, free_port, remove_stack, stack_file
from web_support.receiver import Receiver, running_receiver

GOOD_COMMAND = ["python3", "-m", "http.server", "8080"]
DESIRED_PASSWORD = "desired-db-password-4f8a1c"


def _chrome() -> tuple[str, str] | None:
    """Debian's chromium + chromedriver; else Google Chrome and the chromedriver a GitHub
    runner image carries (``$CHROMEWEBDRIVER``)."""
    driver = "/usr/bin/chromedriver"
    if (binary := shutil.which("chromium")) and Path(driver).exists():
        return binary, driver
    runner_driver = Path(os.environ.get("CHROMEWEBDRIVER", "/nonexistent")) / "chromedriver"
    driver = str(runner_driver) if runner_driver.exists() else shutil.which("chromedriver") or ""
    if (binary := shutil.which("google-chrome")) and driver:
        return binary, driver
    return None


@dataclass
class Env:
    agent: AgentProcess
    remote: Remote
    receiver: Receiver
    prefix: str
    image: str
    secrets: tuple[str, ...]

    def stack_yml(self, command: list[str], **env: str) -> str:
        return stack_file(
            self.prefix,
            command=command,
            env={"LOG_LEVEL": "info", "DB_PASSWORD": DESIRED_PASSWORD, **env},
        )


@pytest.fixture(scope="package")
def web_env(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Env]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    root = tmp_path_factory.mktemp("agent")
    stack = f"{prefix}w{os.urandom(3).hex()}"
    secrets = {
        "token": f"api-token-{os.urandom(8).hex()}",
        "webhook": f"gh-hook-secret-{os.urandom(8).hex()}",
        "gitlab": f"gl-token-{os.urandom(8).hex()}",
    }
    for name, value in secrets.items():
        (root / name).write_text(value + "\n")
    with running_receiver() as receiver:
        urls = {}
        for kind in ("slack", "discord", "webhook"):
            url = f"{receiver.url}/{kind}/hook-secret-{os.urandom(6).hex()}"
            (root / f"{kind}_url").write_text(url + "\n")
            urls[kind] = url
        remote = Remote.create(root)
        env_partial = Env(None, remote, receiver, prefix, base_image, ())  # type: ignore[arg-type]
        remote.commit(
            {
                "stack.yml": env_partial.stack_yml(GOOD_COMMAND),
                "images.yaml": f"web: {base_image}\n",
            },
            "Deploy web",
        )
        agent = AgentProcess(
            root=root,
            stack=stack,
            port=free_port(),
            token=secrets["token"],
            webhook_secret=secrets["webhook"],
            gitlab_token=secrets["gitlab"],
            log=root / "agent.log",
        )
        config = {
            "stack": stack,
            "environment": "test",
            "state_dir": str(root / "state"),
            "git": {
                "url": f"file://{remote.bare}",
                "branch": "main",
                "path": remote.folder,
                "timeout": "30s",
                "commit_url": "https://github.com/acme/driftless/commit/{sha}",
            },
            "sync": {"interval": "1h", "jitter": "0s", "retry_interval": "1h", "self_heal": False},
            "timeouts": {"apply": "60s", "verify": "40s", "rollback": "60s", "notify": "5s"},
            "docker": {"preflight_images": False},
            "http": {
                "bind": "127.0.0.1",
                "port": agent.port,
                "token_file": str(root / "token"),
                "webhook_secret_file": str(root / "webhook"),
                "gitlab_token_file": str(root / "gitlab"),
                "public_url": "https://ops.example.org/reconciler/",
                "refresh": "1s",
            },
            "notify": {
                "slack_url_file": str(root / "slack_url"),
                "discord_url_file": str(root / "discord_url"),
                "webhook_url_file": str(root / "webhook_url"),
                "retries": 2,
                "backoff": "0.2s",
            },
            "log": {"level": "INFO", "format": "text"},
        }
        env = Env(
            agent,
            remote,
            receiver,
            prefix,
            base_image,
            (*secrets.values(), *urls.values(), DESIRED_PASSWORD),
        )
        try:
            agent.start(config)
            agent.wait(
                "the first pass",
                lambda s: bool(s["history"]) and s["phase"] is None,
                timeout=120,
            )
            yield env
        finally:
            agent.stop()
            remove_stack(stack)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium; it accepts the test nginx's self-signed certificate."""
    found = _chrome()
    if found is None:
        pytest.fail(
            "chromium and chromium-driver are not installed (scripts/deps.sh installs them)"
        )
    binary, driver_path = found
    options = Options()
    options.binary_location = binary
    options.accept_insecure_certs = True
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1250",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: webdriver.Chrome, url: str) -> None:
    """Load URL; again when Chromium dropped the page or one of its resources because the
    machine's network changed (other tests on the shared Docker engine add and remove
    interfaces, and Chromium aborts requests in flight with ERR_NETWORK_CHANGED)."""
    for _ in range(3):
        browser.get(url)
        logged = [e["message"] for e in browser.get_log("browser")]
        if "ERR_NETWORK_CHANGED" not in browser.page_source + "\n".join(logged):
            return
