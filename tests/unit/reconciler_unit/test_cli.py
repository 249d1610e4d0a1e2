"""The CLI as a user runs it: validate, status, --help, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.cli import EXIT_OK, EXIT_PENDING, EXIT_REFUSED, EXIT_USAGE, main
from reconciler.state import StateStore
from reconciler.status import ConditionType, Status

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "tests" / "fixtures" / "desired-state" / "example"
PRODUCTION = ROOT / "desired-state" / "production"


def test_validate_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE), "--stack", "demo"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "valid, 2 services (stack demo)" in out
    assert "worker: 127.0.0.1:5000/example/worker:3 (checks http://worker:8080/health" in out
    assert "via network demo_front)" in out


@pytest.mark.skipif(not PRODUCTION.is_dir(), reason="desired-state/production not written yet")
def test_the_production_stack_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    """`reconciler validate desired-state/production` passes, with Docker's own schema check
    (`docker stack config`) when the docker CLI is installed."""
    code = main(["validate", str(PRODUCTION)])
    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    assert "valid" in captured.out


def test_an_invalid_folder_exits_3_and_lists_the_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "env"
    shutil.copytree(EXAMPLE, folder)
    (folder / "images.yaml").write_text("web: x:1\nnope: y:2\n")
    (folder / "stack.yml").write_text(
        (folder / "stack.yml").read_text().replace("replicas: 2", "replicas: two")
    )
    assert main(["validate", str(folder)]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "images.yaml: 'nope' is not a service of stack.yml" in err
    assert "replicas" in err


def _has_stack_config() -> bool:
    if shutil.which("docker") is None:
        return False
    out = subprocess.run(["docker", "stack", "--help"], capture_output=True, text=True)
    return any(line.split()[:1] == ["config"] for line in out.stdout.splitlines())


@pytest.mark.skipif(not _has_stack_config(), reason="this docker CLI has no `stack config`")
def test_docker_schema_errors_are_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "env"
    folder.mkdir()
    (folder / "stack.yml").write_text(
        'version: "3.8"\nservices:\n  a:\n    image: x:1\n    deploy: {replicas: 1, colour: red}\n'
    )
    assert main(["validate", str(folder)]) == EXIT_REFUSED
    assert "colour" in capsys.readouterr().err
    assert main(["validate", "--no-docker", str(folder)]) == EXIT_OK


def test_status_reads_what_the_agent_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("RECONCILER_STACK", "shop")
    monkeypatch.setenv("RECONCILER_ENVIRONMENT", "test")
    assert main(["status"]) == EXIT_PENDING
    assert "no status recorded yet" in capsys.readouterr().err
    from datetime import UTC, datetime

    status = Status(stack="shop", environment="test").with_condition(
        ConditionType.READY, True, "InSync", "in sync at abc", datetime.now(UTC)
    )
    StateStore(tmp_path).save_status(status)
    assert main(["status"]) == EXIT_OK
    assert "Ready:          True    InSync" in capsys.readouterr().out
    assert main(["status", "--json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["conditions"][0]["type"] == "Ready"
    assert data["journal"] is None


def test_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sync: {interval: never}\n")
    assert main(["--config", str(path), "status"]) == EXIT_USAGE
    assert "sync.interval" in capsys.readouterr().err


def test_help_documents_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in ("run", "sync", "diff", "validate", "status", "exit codes", "RECONCILER_GIT__URL"):
        assert word in out


def test_global_options_are_accepted_after_the_verb_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As kubectl and argocd accept them: ``reconciler status --config FILE``."""
    path = tmp_path / "c.yaml"
    path.write_text(f"stack: shop\nenvironment: test\nstate_dir: {tmp_path / 'state'}\n")
    StateStore(tmp_path / "state").save_status(Status(stack="shop", environment="test"))
    for argv in (["--config", str(path), "status"], ["status", "--config", str(path)]):
        assert main(argv) == EXIT_PENDING, argv
        assert "stack shop (test)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("sync: {interval: never}\n")
    assert main(["status", "--config", str(bad), "--log-level", "ERROR"]) == EXIT_USAGE
    # given on both sides, the one after the verb wins
    assert main(["--config", str(bad), "status", "--config", str(path)]) == EXIT_PENDING


def test_a_sync_window_that_does_not_parse_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "sync:\n  windows:\n    - {kind: deny, schedule: '0 18 * * fri-sun', duration: 60h}\n"
    )
    assert main(["--config", str(path), "status"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "sync.windows[0].schedule: '0 18 * * fri-sun'" in err
    assert "runs backwards" in err
