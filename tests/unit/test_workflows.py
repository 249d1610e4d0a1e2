"""The GitHub Actions workflows: least privilege, pinned actions, working shell, real linters.

GitHub's runners are not available here, so the workflows are checked statically (the official
workflow JSON schema, zizmor, shellcheck on every `run:` block) and the deploy workflow's own shell
steps are executed for real against a throwaway git checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"uses: \S+@[0-9a-f]{40} # v\d+(\.\d+)*$")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as a boolean
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def test_there_are_test_build_and_deploy_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "build.yml", "deploy.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_granted_per_job_only(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}, "the workflow default must grant nothing"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must say which permissions it needs"
        perms = job["permissions"]
        assert isinstance(perms, dict), f"job {name}: no read-all/write-all"
        writes = {k for k, v in perms.items() if v == "write"}
        allowed = {
            "test.yml": set(),
            "build.yml": {"packages", "contents", "pull-requests"},
            "deploy.yml": {"contents", "pull-requests"},
        }.get(path.name, set())
        assert writes <= allowed, f"job {name} writes {writes - allowed}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(path: Path) -> None:
    text = path.read_text()
    for step in steps(load(path)):
        uses = step.get("uses")
        if uses is None or uses.startswith("./"):
            continue
        assert PINNED.match(uses), f"{uses} is not pinned to a full commit SHA"
    for line in text.splitlines():
        if re.search(r"uses: [\w-]+/", line):
            assert VERSION_COMMENT.search(line.strip()), f"no version comment: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_blocks_pass_shellcheck(path: Path, tmp_path: Path) -> None:
    for i, step in enumerate(steps(load(path))):
        if "run" not in step:
            continue
        script = tmp_path / f"step{i}.sh"
        # expressions are replaced by GitHub before bash runs; stand in a plain word for them
        script.write_text("#!/usr/bin/env bash\nset -e\n" + EXPRESSION.sub("X", step["run"]))
        result = subprocess.run(
            ["shellcheck", "--severity=warning", str(script)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"{path.name} step {step.get('name', i)}:\n{result.stdout}"


def test_scripts_the_workflows_call_exist() -> None:
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    for script in set(re.findall(r"scripts/[\w./-]+", text)):
        assert (ROOT / script).exists(), f"a workflow calls {script}, which does not exist"


def test_release_builds_publish_sbom_provenance_and_semver_tags() -> None:
    build = load(ROOT / ".github/workflows/build.yml")
    assert build["on"]["push"]["tags"] == ["v*.*.*"]
    assert build["on"]["push"]["branches"] == ["main"]
    push = next(s for s in steps(build) if "build-push-action" in s.get("uses", ""))
    assert push["with"]["sbom"] is True
    assert "linux/arm64" in push["with"]["platforms"], "releases are multi-platform"
    assert push["with"]["provenance"] == "mode=max"
    assert "type=gha" in push["with"]["cache-from"]
    meta = next(s for s in steps(build) if "metadata-action" in s.get("uses", ""))
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]
    assert "type=edge,branch=main" in meta["with"]["tags"]
    assert "type=sha" in meta["with"]["tags"]
    assert build["jobs"]["bump-production"]["uses"] == "./.github/workflows/deploy.yml"
    assert build["jobs"]["bump-production"]["with"]["environment"] == "production"
    # production waits for a person to merge; staging's bump merges itself once checks pass
    assert not build["jobs"]["bump-production"]["with"].get("auto-merge")
    assert build["jobs"]["bump-staging"]["with"]["auto-merge"] is True
    assert build["jobs"]["images"]["needs"] == "test"


def test_images_are_built_from_dockerfiles_that_take_the_build_args() -> None:
    build = load(ROOT / ".github/workflows/build.yml")
    push = next(s for s in steps(build) if "build-push-action" in s.get("uses", ""))
    args = [line.split("=", 1)[0] for line in push["with"]["build-args"].splitlines() if line]
    assert "IMAGE_TAG" in args
    for image in build["jobs"]["images"]["strategy"]["matrix"]["image"]:
        dockerfile = ROOT / push["with"]["file"].replace("${{ matrix.image }}", image)
        assert dockerfile.is_file(), dockerfile
        declared = set(re.findall(r"^ARG (\w+)", dockerfile.read_text(), re.M))
        assert set(args) <= declared, f"{dockerfile.name} has no ARG for {set(args) - declared}"


def test_the_bumped_tag_is_the_tag_the_image_reports() -> None:
    """The health check expects GET /version to report the tag images.yaml names."""
    build = load(ROOT / ".github/workflows/build.yml")
    push = next(s for s in steps(build) if "build-push-action" in s.get("uses", ""))
    image_tag = next(
        line for line in push["with"]["build-args"].splitlines() if line.startswith("IMAGE_TAG=")
    )
    assert "steps.meta.outputs.version" in image_tag  # releases: bump-production's tag
    assert "format('sha-{0}', github.sha)" in image_tag  # main: bump-staging's tag
    assert build["jobs"]["bump-production"]["with"]["tag"] == "${{ needs.images.outputs.version }}"
    assert build["jobs"]["bump-staging"]["with"]["tag"] == "sha-${{ github.sha }}"


# ---------------------------------------------------------------- the linters can fail

BAD_WORKFLOWS = {
    "unknown key": (
        "schema",
        """
on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    permissions: {}
    stepz:
      - run: echo hi
""",
    ),
    "unpinned action": (
        "zizmor",
        """
on: push
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    permissions: {}
    steps:
      - uses: actions/checkout@v4
        with: {persist-credentials: false}
""",
    ),
    "template injection": (
        "zizmor",
        """
on: pull_request_target
permissions: {}
jobs:
  a:
    runs-on: ubuntu-24.04
    permissions: {}
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
""",
    ),
}


def lint_workflow(path: Path) -> dict[str, int]:
    schema = subprocess.run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        check=False,
    )
    zizmor = subprocess.run(
        ["zizmor", "--offline", "--quiet", "--config", str(ROOT / ".github/zizmor.yml"), str(path)],
        capture_output=True,
        check=False,
    )
    return {"schema": schema.returncode, "zizmor": zizmor.returncode}


@pytest.mark.parametrize("case", sorted(BAD_WORKFLOWS))
def test_the_workflow_linters_reject_a_broken_workflow(case: str, tmp_path: Path) -> None:
    tool, text = BAD_WORKFLOWS[case]
    path = tmp_path / ".github" / "workflows" / "bad.yml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert lint_workflow(path)[tool] != 0, f"{tool} accepted a workflow with {case}"


def test_the_workflow_linters_accept_the_real_workflows() -> None:
    for path in WORKFLOWS:
        assert lint_workflow(path) == {"schema": 0, "zizmor": 0}, path.name


# ---------------------------------------------------------------- the deploy steps, executed

API_DIGEST = "sha256:" + "1f" * 32
IMAGES = """\
# production images: the deploy workflow's pull request changes one line
api: ghcr.io/acme/driftless-api:1.3.0
nginx: 127.0.0.1:5000/driftless/nginx:local
"""


def run_step(workflow: dict[str, Any], step_id: str, cwd: Path, env: dict[str, str]) -> str:
    step = next(s for s in steps(workflow) if s.get("id") == step_id)
    output = cwd / "github_output"
    output.write_text("")
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env={**os.environ, **env, "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return output.read_text()


def parse_output(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file (key=value and key<<EOF ... EOF blocks)."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, marker = line.split("<<", 1)
            block = []
            for inner in lines:
                if inner == marker:
                    break
                block.append(inner)
            values[key] = "\n".join(block)
        else:
            key, _, value = line.partition("=")
            values[key] = value
    return values


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "desired-state" / "production").mkdir(parents=True)
    (repo / "desired-state" / "production" / "images.yaml").write_text(IMAGES)
    (repo / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bump_image.py", repo / "scripts")
    # and the image reference parser it reads with (the workflow's checkout has all the repository)
    (repo / "reconciler").mkdir()
    for name in ("__init__.py", "imageref.py"):
        shutil.copy(ROOT / "reconciler" / name, repo / "reconciler")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return repo


def test_deploy_bump_step_changes_one_line_and_describes_the_release(checkout: Path) -> None:
    deploy = load(ROOT / ".github/workflows/deploy.yml")
    env = {
        "ENVIRONMENT": "production",
        "TAG": "1.4.0",
        "API_DIGEST": API_DIGEST,
        "RECONCILER_DIGEST": "",
        "OWNER": "Acme",
    }
    out = parse_output(run_step(deploy, "bump", checkout, env))
    assert out["changed"] == "true"
    assert out["old_tag"] == "1.3.0"
    diff = subprocess.run(
        ["git", "-C", str(checkout), "diff", "--numstat"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert diff[:2] == ["1", "1"], "exactly one line changes"
    images = yaml.safe_load((checkout / "desired-state/production/images.yaml").read_text())
    assert images["api"] == f"ghcr.io/acme/driftless-api:1.4.0@{API_DIGEST}"
    assert "+api: ghcr.io/acme/driftless-api:1.4.0@" in out["diff"]

    text_env = {
        **env,
        "OLD_TAG": out["old_tag"],
        "NEW_REF": out["new_ref"],
        "DIFF": out["diff"],
        "REPO_URL": "https://github.com/acme/driftless",
        "RUN_URL": "https://github.com/acme/driftless/actions/runs/1",
    }
    body = parse_output(run_step(deploy, "text", checkout, text_env))["body"]
    assert "https://github.com/acme/driftless/releases/tag/v1.4.0" in body
    assert "https://github.com/acme/driftless/compare/v1.3.0...v1.4.0" in body
    assert "**production**" in body
    assert "+api: ghcr.io/acme/driftless-api:1.4.0@" in body

    again = parse_output(run_step(deploy, "bump", checkout, env))
    assert again["changed"] == "false", "a second run opens no second pull request"


def test_deploy_bump_step_fails_clearly_for_an_unknown_environment(checkout: Path) -> None:
    deploy = load(ROOT / ".github/workflows/deploy.yml")
    step = next(s for s in steps(deploy) if s.get("id") == "bump")
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=checkout,
        env={
            **os.environ,
            "ENVIRONMENT": "qa",
            "TAG": "1.4.0",
            "OWNER": "acme",
            "GITHUB_OUTPUT": str(checkout / "out"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "desired-state/qa/images.yaml does not exist" in result.stdout


def test_deploy_bump_step_skips_a_missing_staging_folder_when_asked(checkout: Path) -> None:
    deploy = load(ROOT / ".github/workflows/deploy.yml")
    env = {"ENVIRONMENT": "staging", "TAG": "sha-abc", "OWNER": "acme", "SKIP_MISSING": "true"}
    out = parse_output(run_step(deploy, "bump", checkout, env))
    assert out["changed"] == "false"
    assert not (checkout / "desired-state/staging").exists()


# ------------------------------------------------------------------------------ test.yml's jobs
def test_every_push_and_pull_request_is_linted_and_tested_on_a_python_matrix() -> None:
    test = load(ROOT / ".github/workflows/test.yml")
    assert "push" in test["on"]
    assert "pull_request" in test["on"]
    lint = "\n".join(s.get("run", "") for s in test["jobs"]["lint"]["steps"])
    assert "scripts/lint.sh" in lint
    linters = (ROOT / "scripts" / "lint.sh").read_text()
    for tool in ("ruff check", "ruff format", "mypy", "shellcheck", "hadolint", "zizmor"):
        assert tool in linters, f"scripts/lint.sh does not run {tool}"
    assert "check-jsonschema" in linters
    assert "github-workflows" in linters

    tests = test["jobs"]["tests"]
    supported = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert supported, "pyproject.toml must say which Python versions are supported"
    pythons = tests["strategy"]["matrix"]["python"]
    assert len(pythons) >= 2
    assert pythons[0] == f"3.{supported.group(1)}", "the oldest supported Python is tested"
    assert {"postgres", "redis"} <= set(tests["services"]), "service containers for the tests"
    assert tests["env"]["TEST_PG_ADMIN_URL"].startswith("postgresql://")
    assert tests["env"]["TEST_REDIS_URL"].startswith("redis://")
    run_tests = next(s["run"] for s in tests["steps"] if "pytest" in s.get("run", ""))
    assert "tests/unit" in run_tests
    assert "tests/integration" in run_tests
    assert '-m "not e2e' in run_tests, "the Swarm tests run in their own job"
    setup = "\n".join(s.get("run", "") for s in tests["steps"])
    # what tests/obs_support/tools.py and the LogQL/Mermaid checks need besides Debian packages
    assert "scripts/deps.sh node" in setup
    assert "scripts/deps.sh debian13" in setup

    e2e = test["jobs"]["e2e"]
    e2e_run = "\n".join(s.get("run", "") for s in e2e["steps"])
    assert "pytest tests/e2e" in e2e_run
    assert "docker swarm init" in e2e_run
    assert "sudo --preserve-env" in e2e_run, "scripts/up.sh (test_up_down) needs root"
    assert e2e["env"]["PYTHON_IMAGE"], "build-images.sh would need debootstrap on the runner"

    for job in (tests, e2e):
        names = [s.get("name", "") for s in job["steps"]]
        summary = next(s for s in job["steps"] if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
        assert "coverage report" in summary["run"], names
        assert summary["if"] == "${{ !cancelled() }}", "the summary is written when tests fail"
        upload = next(s for s in job["steps"] if "upload-artifact" in s.get("uses", ""))
        assert any(p.startswith("coverage") for p in upload["with"]["path"].split()), upload
        assert upload["if"] == "${{ !cancelled() }}"
        assert "--cov" in "\n".join(s.get("run", "") for s in job["steps"])


def test_every_secret_the_workflows_read_is_listed_in_the_deployment_guide() -> None:
    guide = (ROOT / "runbooks" / "DEPLOYMENT_GUIDE.md").read_text()
    used: set[str] = set()
    for path in WORKFLOWS:
        used |= set(re.findall(r"\b(?:secrets|vars)\.(\w+)", path.read_text()))
    assert "GITHUB_TOKEN" in used
    # merging the pull request is the deployment: no workflow logs in to the VM
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    assert not re.search(r"\bssh\b|ssh-action|SSH_KEY|VM_HOST", text, re.I)
    for name in sorted(used):
        assert f"| `{name}` |" in guide, f"{name} is used by a workflow but not in the guide"
