"""scripts/smoke.sh, the check run after every deployment, against a real `api serve`: it passes
on a healthy API of the expected version and fails, naming the step, when it should."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from apitest_helpers import Served

SMOKE = Path(__file__).resolve().parents[3] / "scripts" / "smoke.sh"


def smoke(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SMOKE), url, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_smoke_passes_and_fails_where_it_should(serve_api: Callable[..., Served]) -> None:
    served = serve_api({"IMAGE_TAG": "smoke-7"}, ready_path="/health/ready")

    good = smoke(served.url, "--expect-version", "smoke-7")
    assert good.returncode == 0, good.stdout + good.stderr
    for step in ("/health/live", "/health/ready", "/version", "/auth/register", "/auth/login",
                 "/users/me", "/auth/logout"):  # fmt: skip
        assert f"smoke: ok   {'POST' if 'auth' in step else 'GET'} {step}" in good.stdout, step
    assert "smoke: all checks passed" in good.stdout
    assert "access_token" not in good.stdout + good.stderr, "the token is never printed"

    wrong = smoke(served.url, "--expect-version", "smoke-8")
    assert wrong.returncode == 1
    assert "smoke: FAIL GET /version: expected smoke-8" in wrong.stderr
    assert "auth" not in wrong.stdout, "it stops at the first failed step"

    served.process.terminate()
    served.process.wait(15)
    gone = smoke(served.url)
    assert gone.returncode == 1
    assert "smoke: FAIL GET /health/live" in gone.stderr
