"""The systemd units of the VM: valid for systemd (`systemd-analyze verify`), hardened as promised
(`systemd-analyze security --offline`), and pointing at programs the project installs.

systemd is not PID 1 here, so the units cannot be started; `systemd-analyze` checks them against
a throwaway root holding systemd's own units, stand-ins for the executables at the paths the
bootstrap installs them to, and the units themselves.
"""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted(p for p in (ROOT / "systemd").iterdir() if p.suffix in {".service", ".timer"})
SERVICES = [p for p in UNITS if p.suffix == ".service"]
# where scripts/bootstrap-vm.sh puts the project on the VM
SRC, VENV = "/opt/driftless/src/", "/opt/driftless/venv/bin/"


def read_unit(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    # repeated keys (ExecStart=, SystemCallFilter=) are legal in units: keep the last for reading
    parser.read_string(path.read_text())
    return parser


def exec_paths(path: Path) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^Exec\w+=[-@:+!]*(\S+)", path.read_text(), re.M)]


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(unit, unit_dir)
        for exe in exec_paths(unit):
            stand_in = root / exe.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    (unit_dir / "docker.service").write_text("[Service]\nExecStart=/bin/true\n")
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_unit_passes_systemd_analyze_verify(fake_root: Path) -> None:
    result = verify(fake_root, *(u.name for u in UNITS if "@" not in u.name))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"systemd warned:\n{result.stderr}"
    for instance in ("driftless-notify-failure@driftless-backup.service.service",
                     "reconciler@staging.service"):  # fmt: skip
        template = verify(fake_root, instance)
        assert template.returncode == 0, template.stderr
        assert template.stderr == ""


def test_verify_catches_a_broken_unit(fake_root: Path) -> None:
    unit = fake_root / "etc/systemd/system/broken.service"
    unit.write_text("[Service]\nExecStart=/opt/driftless/venv/bin/reconciler\nRestart=sometimes\n")
    result = verify(fake_root, "broken.service")
    assert "restart specifier" in result.stderr
    assert "sometimes" in result.stderr
    unit.unlink()


def test_programs_the_units_run_are_in_the_project() -> None:
    for unit in SERVICES:
        for exe in exec_paths(unit):
            if exe.startswith(SRC):
                assert (ROOT / exe.removeprefix(SRC)).is_file(), f"{unit.name}: {exe}"
            elif exe.startswith(VENV):
                scripts = (ROOT / "pyproject.toml").read_text()
                name = exe.removeprefix(VENV)
                assert re.search(rf"^{name} = ", scripts, re.M), f"{unit.name}: no {name} script"
            else:
                assert exe.startswith("/usr/bin/"), f"{unit.name}: unexpected program {exe}"


def test_reconciler_unit_is_hardened_as_documented() -> None:
    service = read_unit(ROOT / "systemd/reconciler.service")["Service"]
    assert service["Restart"] == "always"
    assert service["User"] == "deploy"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/reconciler"
    assert service["StateDirectory"] == "reconciler"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["EnvironmentFile"] == "-/etc/reconciler/reconciler.env"
    assert "/etc/reconciler/config.yaml" in service["ExecStart"]


def test_one_reconciler_per_environment_shares_nothing_writable_with_another() -> None:
    """reconciler@<env>: the same unit as reconciler.service, with the environment's own
    configuration, environment file and state directory (several agents on one VM)."""
    single = read_unit(ROOT / "systemd/reconciler.service")["Service"]
    per_env = read_unit(ROOT / "systemd/reconciler@.service")["Service"]
    assert per_env["ExecStart"] == single["ExecStart"].replace("config.yaml", "%i.yaml")
    assert per_env["EnvironmentFile"] == "-/etc/reconciler/%i.env"
    assert per_env["StateDirectory"] == "reconciler/%i"
    assert per_env["ReadWritePaths"] == per_env["WorkingDirectory"] == "/var/lib/reconciler/%i"
    assert per_env["Environment"] == single["Environment"]  # the last one: the same
    paths = {"ExecStart", "EnvironmentFile", "StateDirectory", "ReadWritePaths",
             "WorkingDirectory", "Environment"}  # fmt: skip
    assert {k: v for k, v in per_env.items() if k not in paths} == {
        k: v for k, v in single.items() if k not in paths
    }, "the hardening is the same"
    text = (ROOT / "systemd/reconciler@.service").read_text()
    assert "Environment=HOME=/var/lib/reconciler/%i" in text


@pytest.mark.parametrize(
    ("unit", "threshold"),
    [
        ("reconciler.service", 2.0),
        ("reconciler@.service", 2.0),
        ("driftless-notify-failure@.service", 2.0),
        ("driftless-backup.service", 3.0),
        ("driftless-docker-prune.service", 4.0),
    ],
)
def test_exposure_score_stays_low(unit: str, threshold: float) -> None:
    """`systemd-analyze security` rates exposure 0 (locked down) to 10 (unprotected)."""
    result = subprocess.run(
        [
            "systemd-analyze", "security", "--offline=true", f"--threshold={round(threshold * 10)}",
            "--no-pager", str(ROOT / "systemd" / unit),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert score, result.stdout + result.stderr
    assert result.returncode == 0, f"{unit}: exposure {score.group(1)} > {threshold}"


def test_timers_are_persistent_and_enabled_by_timers_target() -> None:
    for timer in (p for p in UNITS if p.suffix == ".timer"):
        unit = read_unit(timer)
        assert unit["Timer"]["Persistent"] == "true", timer.name
        assert unit["Install"]["WantedBy"] == "timers.target", timer.name
        assert (ROOT / "systemd" / timer.name.replace(".timer", ".service")).exists()


def test_next_backup_time_is_nightly() -> None:
    result = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=2", "*-*-* 02:30:00 UTC"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "02:30:00 UTC" in result.stdout
    timer = read_unit(ROOT / "systemd/driftless-backup.timer")
    assert timer["Timer"]["OnCalendar"] == "*-*-* 02:30:00 UTC"
