"""Platform benchmark: image sizes, warm-cache build times, and a release under load.

    sudo scripts/testenv.sh up docker && . .venv/bin/activate
    python bench/platform/bench_platform.py [--releases 2] [--skip-deploy]

Prints, and writes to .cache/artifacts/bench-platform.json:

- the size of the API and reconciler images (target: API under 200 MB on a slim base; the local
  base image here is Debian's python3 with pip, a little larger than python:3.12-slim), and of the
  base they are built on, so the part the Dockerfile adds is visible;
- build time with a warm layer cache: nothing changed, and one source file changed (the case CI
  hits on every commit; target under 1 minute, requirement under 5);
- for each release: time from the tag-bump commit to all 3 API replicas on the new image and to
  the reconciler having verified it, and the requests sent / failed through nginx meanwhile.

The release part deploys the whole stack with the reconciler exactly as tests/e2e/platform does
(same harness), under the TEST_STACK_PREFIX, and removes it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e" / "platform"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # the harness removes stacks with scripts/remove_stack.py

from conftest import _load_env_file  # noqa: E402  (the test environment's variables)
from stack_harness import (  # noqa: E402
    SECRETS_SCRIPT,
    DesiredRepo,
    Reconciler,
    build_images,
    load,
    prepare_stack,
    run,
    wait_until,
)

CONTEXT_FILES = (
    "pyproject.toml",
    "README.md",
    ".dockerignore",
    "Dockerfile.api",
    "Dockerfile.reconciler",
)
CONTEXT_DIRS = ("api", "reconciler", "images/reconciler")


def mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB"


def image_size(ref: str) -> int:
    return int(run("docker", "image", "inspect", "--format", "{{.Size}}", ref).strip())


def timed_build(context: Path, dockerfile: str, tag: str, args: list[str]) -> float:
    start = time.monotonic()
    run(
        "docker", "build", "-q", "-f", context / dockerfile, *args, "-t", tag, context,
        env={**os.environ, "DOCKER_BUILDKIT": "0"}, timeout=1800,
    )  # fmt: skip
    return time.monotonic() - start


def bench_builds(base: str, cli_image: str) -> dict[str, object]:
    """Build from a copy of the sources so that the change below never touches the checkout."""
    ctx = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        for name in CONTEXT_FILES:
            shutil.copy(ROOT / name, ctx / name)
        for name in CONTEXT_DIRS:
            shutil.copytree(ROOT / name, ctx / name, ignore=shutil.ignore_patterns("__pycache__"))
        args = ["--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", "IMAGE_TAG=bench"]
        out: dict[str, object] = {}
        for kind, dockerfile, extra in (
            ("api", "Dockerfile.api", []),
            (
                "reconciler",
                "Dockerfile.reconciler",
                ["--build-arg", f"DOCKER_CLI_IMAGE={cli_image}"],
            ),
        ):
            tag = f"driftless-bench/{kind}:bench"
            first = timed_build(ctx, dockerfile, tag, args + extra)  # warms the cache if it is cold
            unchanged = timed_build(ctx, dockerfile, tag, args + extra)
            package = ctx / kind / "__init__.py"
            package.write_text(package.read_text() + f"\n# bench {time.time()}\n")
            changed = timed_build(ctx, dockerfile, tag, args + extra)
            out[kind] = {
                "size_bytes": image_size(tag),
                "first_build_seconds": round(first, 1),
                "warm_unchanged_seconds": round(unchanged, 1),
                "warm_code_change_seconds": round(changed, 1),
            }
            run("docker", "rmi", tag, check=False)
        out["base_size_bytes"] = image_size(base)
        return out
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def bench_releases(registry: str, releases: int) -> list[dict[str, object]]:
    prefix = os.environ.get("TEST_STACK_PREFIX", "dlt")
    name = f"{prefix}bp"
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    images = build_images(registry)
    stack, variables = prepare_stack(name, workdir)
    repo = DesiredRepo(workdir)
    first = repo.init(images.local(images.api_v1))
    rec = Reconciler(workdir, name, repo, variables, probe_image=images.api_v1)
    results: list[dict[str, object]] = []
    try:
        rec.start()
        t0 = time.monotonic()
        rec.wait_applied(first, 600)
        print(f"first deploy of the whole stack: {time.monotonic() - t0:.0f} s", flush=True)
        current = images.api_v1
        for _ in range(releases):
            new = images.api_v2 if current == images.api_v1 else images.api_v1
            with load(stack) as gen:
                time.sleep(3)
                committed = time.monotonic()
                sha = repo.bump({"api": new, "migrate": new}, f"Release {new.rsplit(':', 1)[1]}")
                wait_until(
                    "3 replicas on the new image",
                    lambda new=new: stack.running_images("api") == {new: 3},
                    600,
                    every=0.5,
                )
                replicas = time.monotonic() - committed
                rec.wait_applied(sha, 600)
                verified = time.monotonic() - committed
                time.sleep(2)
                res = gen.stop()
            row = {
                "release": new.rsplit(":", 1)[1],
                "seconds_commit_to_3_replicas_new": round(replicas, 1),
                "seconds_commit_to_verified": round(verified, 1),
                "requests_sent": res.sent,
                "requests_failed": res.failed,
            }
            print(json.dumps(row), flush=True)
            results.append(row)
            current = new
    finally:
        rec.stop()
        stack.remove(SECRETS_SCRIPT)
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=2, help="tag bumps to time (default 2)")
    parser.add_argument("--skip-deploy", action="store_true", help="only sizes and build times")
    opts = parser.parse_args()
    _load_env_file()
    registry = os.environ.get("TEST_REGISTRY", "127.0.0.1:5000")
    base = (ROOT / ".cache" / "base-image").read_text().strip()
    subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh"), "stand-ins"], check=True, capture_output=True
    )
    figures: dict[str, object] = {
        "builds": bench_builds(base, f"{registry}/driftless/docker-cli:local")
    }
    builds = figures["builds"]
    assert isinstance(builds, dict)
    print(f"\nbase image ({base}): {mb(builds['base_size_bytes'])}")
    for kind in ("api", "reconciler"):
        b = builds[kind]
        extra = b["size_bytes"] - builds["base_size_bytes"]
        print(
            f"{kind:>10}: {mb(b['size_bytes'])} (+{mb(extra)} over the base); build: first "
            f"{b['first_build_seconds']} s, warm unchanged {b['warm_unchanged_seconds']} s, "
            f"warm after a code change {b['warm_code_change_seconds']} s"
        )
    if not opts.skip_deploy:
        figures["releases"] = bench_releases(registry, opts.releases)
    out = ROOT / ".cache" / "artifacts" / "bench-platform.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    print(f"\nfigures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
