"""The tag-bump script the deploy workflow runs: one line changes, nothing else does."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bump_image.py"

_spec = importlib.util.spec_from_file_location("bump_image", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
bump = importlib.util.module_from_spec(_spec)
sys.modules["bump_image"] = bump
_spec.loader.exec_module(bump)

DIGEST = "sha256:" + "ab" * 32
IMAGES = """\
# Image of every service; CI's tag-bump pull request changes one line.
api: ghcr.io/acme/driftless-api:1.3.0   # the shop API
migrate: "ghcr.io/acme/driftless-api:1.3.0"
nginx: 127.0.0.1:5000/driftless/nginx:local
postgres: postgres:16.4@sha256:{}
""".format("cd" * 32)


def run(path: Path, *args: str, output: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--github-output", str(output)] if output else []
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path), *args, *extra],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def images(tmp_path: Path) -> Path:
    path = tmp_path / "images.yaml"
    path.write_text(IMAGES)
    return path


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_service_bump_changes_exactly_one_line_and_keeps_the_comment(images: Path) -> None:
    result = run(images, "--service", "api", "--tag", "1.4.0")
    assert result.returncode == 0, result.stderr
    assert changed_lines(IMAGES, images.read_text()) == [
        (
            "api: ghcr.io/acme/driftless-api:1.3.0   # the shop API",
            "api: ghcr.io/acme/driftless-api:1.4.0   # the shop API",
        )
    ]
    assert "api: ghcr.io/acme/driftless-api:1.3.0 -> ghcr.io/acme/driftless-api:1.4.0" in (
        result.stdout
    )
    assert yaml.safe_load(images.read_text())["api"] == "ghcr.io/acme/driftless-api:1.4.0"


def test_repository_bump_moves_every_service_on_that_image_and_pins_the_digest(
    images: Path, tmp_path: Path
) -> None:
    output = tmp_path / "github_output"
    result = run(
        images,
        "--repository",
        "ghcr.io/acme/driftless-api",
        "--tag",
        "1.4.0",
        "--digest",
        DIGEST,
        output=output,
    )
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(images.read_text())
    assert data["api"] == data["migrate"] == f"ghcr.io/acme/driftless-api:1.4.0@{DIGEST}"
    assert data["nginx"] == "127.0.0.1:5000/driftless/nginx:local"
    assert '"ghcr.io/acme/driftless-api:1.4.0@' in images.read_text()  # quotes kept
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["changed"] == "true"
    assert outputs["services"] == "api,migrate"
    assert outputs["old_tag"] == "1.3.0"
    assert outputs["new_ref"] == f"ghcr.io/acme/driftless-api:1.4.0@{DIGEST}"


def test_second_run_changes_nothing_and_says_so(images: Path, tmp_path: Path) -> None:
    assert run(images, "--service", "api", "--tag", "1.4.0").returncode == 0
    once = images.read_text()
    mtime = images.stat().st_mtime_ns
    output = tmp_path / "out"
    again = run(images, "--service", "api", "--tag", "1.4.0", output=output)
    assert again.returncode == 0
    assert "(already)" in again.stdout
    assert images.read_text() == once
    assert images.stat().st_mtime_ns == mtime
    assert "changed=false" in output.read_text()


def test_digest_is_replaced_or_dropped_with_the_tag(images: Path) -> None:
    assert run(images, "--service", "postgres", "--tag", "16.5").returncode == 0
    assert yaml.safe_load(images.read_text())["postgres"] == "postgres:16.5"


def test_check_mode_prints_the_change_and_writes_nothing(images: Path) -> None:
    result = run(images, "--service", "api", "--tag", "2.0.0", "--check")
    assert result.returncode == 0
    assert "-> ghcr.io/acme/driftless-api:2.0.0" in result.stdout
    assert images.read_text() == IMAGES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "web", "--tag", "1.0.0"], "no line for service 'web'"),
        (["--repository", "ghcr.io/x/y", "--tag", "1.0.0"], "no line for repository"),
        (["--service", "api", "--tag", "1.0.0; rm -rf /"], "invalid tag"),
        (["--service", "api", "--tag=-bad"], "invalid tag"),
        (["--service", "api", "--tag", "1.0.0", "--digest", "md5:00"], "invalid digest"),
    ],
)
def test_bad_input_is_refused_and_the_file_is_untouched(
    images: Path, args: list[str], message: str
) -> None:
    result = run(images, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert images.read_text() == IMAGES


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("api:\n  image: ghcr.io/acme/driftless-api:1\n", "line 1 is not `service: image`"),
        ("api: a:1\napi: a:2\n", "appears twice"),
    ],
)
def test_files_of_another_shape_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(content)
    result = run(path, "--service", "api", "--tag", "9")
    assert result.returncode == 2
    assert message in result.stderr
    assert path.read_text() == content


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path / "nope.yaml", "--service", "api", "--tag", "1")
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_crlf_line_endings_and_file_mode_survive(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_bytes(b"api: r/api:1\r\nweb: r/web:1\r\n")
    path.chmod(0o640)
    assert run(path, "--service", "web", "--tag", "2").returncode == 0
    assert path.read_bytes() == b"api: r/api:1\r\nweb: r/web:2\r\n"
    assert path.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("ref", "repository", "tag", "digest"),
    [
        ("nginx", "nginx", None, None),
        ("127.0.0.1:5000/driftless/api:local", "127.0.0.1:5000/driftless/api", "local", None),
        ("127.0.0.1:5000/driftless/api", "127.0.0.1:5000/driftless/api", None, None),
        (f"ghcr.io/a/b:1.0@{DIGEST}", "ghcr.io/a/b", "1.0", DIGEST),
    ],
)
def test_image_references_parse_like_docker_reads_them(
    ref: str, repository: str, tag: str | None, digest: str | None
) -> None:
    parsed = bump.image(ref)
    assert (parsed.name, parsed.tag, parsed.digest) == (repository, tag, digest)
    assert str(parsed) == ref


def test_image_references_are_read_by_the_reconcilers_parser() -> None:
    from reconciler import imageref

    assert bump.parse_image is imageref.parse_image
    assert bump.ImageRef is imageref.ImageRef


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("api: ghcr.io/Acme/api:1\n", "api: not a valid image reference"),
        ("api: ghcr.io/acme/api:1@md5:00\n", "api: not a valid image reference"),
    ],
)
def test_a_malformed_reference_in_the_file_is_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(content)
    result = run(path, "--service", "api", "--tag", "2")
    assert result.returncode == 2
    assert message in result.stderr
    assert path.read_text() == content


# ------------------------------------------------ whole references: what scripts/up.sh asks for
LOCAL = "127.0.0.1:5000/driftless"


def test_whole_references_for_named_services_and_a_template_for_the_others(
    tmp_path: Path,
) -> None:
    """scripts/up.sh points production's images.yaml at what this machine has: the images it
    built, and (no upstream registry) local stand-ins, a placeholder for those it cannot build."""
    path = tmp_path / "images.yaml"
    production = (ROOT / "desired-state" / "production" / "images.yaml").read_text()
    path.write_text(production)
    args = [
        *("--image", f"api={LOCAL}/api:abc123"),
        *("--image", f"migrate={LOCAL}/api:abc123"),
        *("--image", f"reconciler={LOCAL}/reconciler:abc123"),
        *("--image", f"grafana={LOCAL}/unavailable:local"),
        *("--others", LOCAL + "/{service}:local"),
    ]
    result = run(path, *args)
    assert result.returncode == 0, result.stderr
    before, after = yaml.safe_load(production), yaml.safe_load(path.read_text())
    assert after.keys() == before.keys()
    assert after["api"] == after["migrate"] == f"{LOCAL}/api:abc123"
    assert after["reconciler"] == f"{LOCAL}/reconciler:abc123"
    assert after["grafana"] == f"{LOCAL}/unavailable:local"
    assert after["node-exporter"] == f"{LOCAL}/node-exporter:local"
    assert all(ref.startswith(f"{LOCAL}/") for ref in after.values())
    # the comments stay; a second run changes nothing
    assert [line for line in production.splitlines() if line.startswith("#")] == [
        line for line in path.read_text().splitlines() if line.startswith("#")
    ]
    once = path.read_text()
    again = run(path, *args)
    assert again.returncode == 0
    assert path.read_text() == once
    assert again.stdout.count("(already)") == len(before)


def test_whole_references_without_others_change_only_the_named_services(images: Path) -> None:
    result = run(images, "--image", f"nginx={LOCAL}/nginx:v2")
    assert result.returncode == 0, result.stderr
    assert changed_lines(IMAGES, images.read_text()) == [
        (f"nginx: {LOCAL}/nginx:local", f"nginx: {LOCAL}/nginx:v2")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "web=nginx:1"], "no line for service 'web'"),
        (["--image", "api=Not/A/Reference"], "not a valid image reference"),
        (["--image", "api"], "expected SERVICE=REFERENCE"),
        (["--image", "api=a:1", "--image", "api=a:2"], "once per service"),
        (["--image", "api=a:1", "--others", "x/{service}:Bad Tag"], "not a valid image reference"),
        (["--image", "api=a:1", "--tag", "2"], "no --tag or --digest"),
        (["--service", "api", "--tag", "2", "--others", "x/{service}"], "--others goes with"),
        (["--service", "api"], "need --tag"),
    ],
)
def test_bad_whole_references_are_refused_and_the_file_is_untouched(
    images: Path, args: list[str], message: str
) -> None:
    result = run(images, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert images.read_text() == IMAGES
