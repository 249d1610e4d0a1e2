"""scripts/bootstrap-vm.sh: idempotent, honest about what it changes, and writing configuration
that the real programs accept.

Ubuntu 24.04 cannot be installed here (no Ubuntu mirror is reachable), and the steps that need a
booted system (apt installs, users, Docker Engine, UFW, systemctl) would change the machine that
runs the tests. So the script runs with `--root DIR`, which writes every configuration file under
DIR and skips those steps, and each file is then checked by the real consumer installed from
Debian: `sshd -T`, `fail2ban-client --test`, `apt-config`, Python's JSON parser for daemon.json,
`systemd-analyze verify` for the units (tests/unit/test_systemd_units.py), and this kernel's
/proc/sys for every sysctl key. The whole script also runs in `--check` mode inside a throwaway
container of a fresh Debian (tests/e2e/test_bootstrap_container.py) to show it changes nothing
there. Not tested here, for those reasons: package installation, Docker's apt repository, Swarm
init, user creation, UFW and service restarts on a real Ubuntu 24.04.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bootstrap-vm.sh"
REPO_URL = "git@github.com:acme/driftless.git"


def bootstrap(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--root", str(root), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def tree_digest(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mode of every file under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path.relative_to(root))] = (
                hashlib.sha256(path.read_bytes()).hexdigest(),
                path.stat().st_mode & 0o7777,
            )
    return out


@pytest.fixture
def vm(tmp_path: Path) -> Path:
    """A root with an operator `alice` (sudo) who has an SSH key, like a fresh cloud VM."""
    root = tmp_path / "vm"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
    )
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n")
    (root / "home/alice/.ssh").mkdir(parents=True)
    (root / "home/alice/.ssh/authorized_keys").write_text("ssh-ed25519 AAAAC3Nza alice@laptop\n")
    return root


def test_first_run_changes_and_second_run_changes_nothing(vm: Path) -> None:
    first = bootstrap(vm, "--repo-url", REPO_URL)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed: create /etc/ssh/sshd_config.d/00-driftless.conf" in first.stdout
    assert "change(s) made" in first.stdout
    # the backup unit's metrics directory, which the stack's node-exporter mounts
    textfile = vm / "var/lib/prometheus/node-exporter"
    assert textfile.is_dir()
    assert textfile.stat().st_mode & 0o777 == 0o755
    state = tree_digest(vm)

    second = bootstrap(vm, "--repo-url", REPO_URL)
    assert second.returncode == 0, second.stderr
    assert "changed:" not in second.stdout
    assert "No changes: this machine already matches." in second.stdout
    assert tree_digest(vm) == state

    check = bootstrap(vm, "--check")
    assert check.returncode == 0
    assert "No changes" in check.stdout


def test_check_reports_drift_without_touching_it_and_apply_repairs_it(vm: Path) -> None:
    assert bootstrap(vm, "--repo-url", REPO_URL).returncode == 0
    sysctl = vm / "etc/sysctl.d/60-driftless.conf"
    sysctl.write_text(sysctl.read_text() + "vm.swappiness = 60\n")
    token = vm / "etc/reconciler/secrets/api-token"
    token.chmod(0o644)
    drifted = tree_digest(vm)

    check = bootstrap(vm, "--check")
    assert check.returncode == 2, "--check exits 2 when something would change"
    lines = [line.strip() for line in check.stdout.splitlines() if "would change" in line]
    assert lines == [
        "would change: update /etc/sysctl.d/60-driftless.conf",
        "would change: mode of /etc/reconciler/secrets/api-token to 0640",
    ]
    assert tree_digest(vm) == drifted

    fix = bootstrap(vm)
    assert fix.returncode == 0
    assert "vm.swappiness = 60" not in sysctl.read_text()
    assert token.stat().st_mode & 0o777 == 0o640
    assert "No changes" in bootstrap(vm).stdout


def test_check_on_an_empty_machine_creates_nothing(vm: Path) -> None:
    before = tree_digest(vm)
    result = bootstrap(vm, "--check", "--repo-url", REPO_URL)
    assert result.returncode == 2
    assert "would change: create /etc/docker/daemon.json" in result.stdout
    assert tree_digest(vm) == before
    assert not (vm / "opt").exists()


def test_secrets_are_private_and_never_printed(vm: Path) -> None:
    result = bootstrap(vm, "--repo-url", REPO_URL)
    secrets = vm / "etc/reconciler/secrets"
    for name in ("deploy-key", "webhook-secret", "api-token"):
        path = secrets / name
        assert path.stat().st_mode & 0o777 == 0o640, name
        value = path.read_text().strip()
        assert len(value) >= 40
        for line in value.splitlines()[1:-1] or [value]:
            assert line not in result.stdout + result.stderr, f"{name} was printed"
    assert (secrets / "webhook-secret").read_text() != (secrets / "api-token").read_text()
    # the public half of the generated key is printed: it goes to the repository's deploy keys
    public = (secrets / "deploy-key.pub").read_text().strip()
    assert public.startswith("ssh-ed25519 ")
    assert public in result.stdout
    assert (vm / "etc/reconciler").stat().st_mode & 0o777 == 0o750
    assert (vm / "etc/driftless/backup.env").stat().st_mode & 0o777 == 0o600
    # the age key of the stack's SOPS secrets: private, only its recipient is printed
    age_key = secrets / "age.key"
    assert age_key.stat().st_mode & 0o777 == 0o640
    identity = next(x for x in age_key.read_text().splitlines() if x.startswith("AGE-SECRET-KEY"))
    assert identity not in result.stdout + result.stderr
    recipient = next(x for x in age_key.read_text().splitlines() if "public key: " in x)
    assert f"DRIFTLESS_AGE_RECIPIENTS={recipient.split(': ')[1]}" in result.stdout


def test_given_deploy_key_registry_login_and_extra_secrets_are_installed(
    vm: Path, tmp_path: Path
) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    token = tmp_path / "token"
    token.write_text("ghp_exampletoken\n")
    extra = tmp_path / "secrets"
    extra.mkdir()
    (extra / "slack-webhook-url").write_text("https://hooks.slack.com/services/T/B/x\n")
    result = bootstrap(
        vm, "--repo-url", REPO_URL, "--git-deploy-key", str(key),
        "--registry-user", "acme-bot", "--registry-token-file", str(token),
        "--secrets-dir", str(extra), "--domain", "shop.example.com",
        "--domain", "www.shop.example.com", "--acme-email", "ops@example.com",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    etc = vm / "etc/reconciler"
    assert (etc / "secrets/deploy-key").read_bytes() == key.read_bytes()
    assert "Add this public key" not in result.stdout
    auth = json.loads((etc / "docker/config.json").read_text())["auths"]["ghcr.io"]["auth"]
    assert auth == "YWNtZS1ib3Q6Z2hwX2V4YW1wbGV0b2tlbg=="  # base64("acme-bot:ghp_exampletoken")
    assert "ghp_exampletoken" not in result.stdout + result.stderr
    assert (etc / "secrets/slack-webhook-url").stat().st_mode & 0o777 == 0o640
    assert "github.com ssh-ed25519 " in (etc / "known_hosts").read_text()
    config = (etc / "config.yaml").read_text()
    assert REPO_URL in config
    assert "desired-state/production" in config
    assert 'DRIFTLESS_DOMAINS: "shop.example.com,www.shop.example.com"' in config
    assert 'DRIFTLESS_PUBLIC_HOST: "shop.example.com"' in config
    assert 'DRIFTLESS_ACME_EMAIL: "ops@example.com"' in config
    assert "RECONCILER_HTTP__BIND=172.18.0.1" in (etc / "reconciler.env").read_text()
    # the reconciler's own loader accepts the file, with every secret path it names present
    loaded = load_config(
        path=as_root(vm, etc / "config.yaml"),
        env=as_root_env(vm, etc / "reconciler.env"),
    )
    assert loaded.git.url == REPO_URL
    assert loaded.git.path == "desired-state/production"
    assert loaded.http.bind == "172.18.0.1"
    assert loaded.http.token_file == vm / "etc/reconciler/secrets/api-token"
    assert loaded.http.public_url == "https://shop.example.com/deploy/"
    assert loaded.notify.slack_url_file == vm / "etc/reconciler/secrets/slack-webhook-url"
    assert loaded.notify.discord_url_file is None
    assert loaded.render.variables["DRIFTLESS_PUBLIC_HOST"] == "shop.example.com"
    assert loaded.health.probe_image


def test_the_first_config_without_options_is_valid_for_the_reconciler(vm: Path) -> None:
    assert bootstrap(vm, "--repo-url", REPO_URL).returncode == 0
    etc = vm / "etc/reconciler"
    loaded = load_config(path=as_root(vm, etc / "config.yaml"), env={})
    assert loaded.notify.slack_url_file is None
    assert loaded.http.public_url == ""  # no --domain: no address to link
    assert loaded.git.ssh_key_file == vm / "etc/reconciler/secrets/deploy-key"
    assert loaded.git.known_hosts_file == vm / "etc/reconciler/known_hosts"
    assert loaded.render.sops_age_key_file == vm / "etc/reconciler/secrets/age.key"


def as_root(vm: Path, config: Path) -> Path:
    """The config with its /etc/reconciler paths moved under the test's root."""
    moved = config.with_name("config.rooted.yaml")
    moved.write_text(config.read_text().replace("/etc/reconciler/", f"{vm}/etc/reconciler/"))
    return moved


def as_root_env(vm: Path, env_file: Path) -> dict[str, str]:
    env = {}
    for line in env_file.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def test_operator_files_are_not_overwritten(vm: Path) -> None:
    assert bootstrap(vm, "--repo-url", REPO_URL).returncode == 0
    config = vm / "etc/reconciler/config.yaml"
    config.write_text("# my edits\n")
    backup_env = vm / "etc/driftless/backup.env"
    backup_env.write_text("BACKUP_KEEP_DAILY=14\n")
    again = bootstrap(vm, "--repo-url", "git@github.com:other/repo.git", "--environment", "staging")
    assert again.returncode == 0
    assert config.read_text() == "# my edits\n"
    assert backup_env.read_text() == "BACKUP_KEEP_DAILY=14\n"


def test_ssh_hardening_refuses_to_lock_everyone_out(vm: Path) -> None:
    (vm / "home/alice/.ssh/authorized_keys").write_text("")
    result = bootstrap(vm, "--only", "ssh")
    assert result.returncode == 1
    assert "would lock everyone out" in result.stderr
    assert not (vm / "etc/ssh/sshd_config.d/00-driftless.conf").exists()


def test_sshd_accepts_the_hardening_and_applies_it(vm: Path, tmp_path: Path) -> None:
    assert bootstrap(vm, "--only", "ssh").returncode == 0
    host_key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    result = subprocess.run(
        ["/usr/sbin/sshd", "-T", "-f", str(vm / "etc/ssh/sshd_config.d/00-driftless.conf"),
         "-h", str(host_key)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    effective = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert effective["permitrootlogin"] == "no"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["maxauthtries"] == "3"
    assert effective["x11forwarding"] == "no"


def test_fail2ban_accepts_the_jail(vm: Path, tmp_path: Path) -> None:
    conf = tmp_path / "fail2ban"
    shutil.copytree("/etc/fail2ban", conf)
    assert bootstrap(vm, "--only", "fail2ban").returncode == 0
    shutil.copy(vm / "etc/fail2ban/jail.d/driftless.local", conf / "jail.d")
    test = subprocess.run(
        ["fail2ban-client", "-c", str(conf), "--test"], capture_output=True, text=True, check=False
    )
    assert test.returncode == 0, test.stdout + test.stderr
    dump = subprocess.run(
        ["fail2ban-client", "-c", str(conf), "-d"], capture_output=True, text=True, check=True
    ).stdout
    assert "['add', 'sshd', 'systemd']" in dump
    assert "['set', 'sshd', 'maxretry', 5]" in dump
    assert "ufw" in dump


def apt_config(path: Path) -> str:
    return subprocess.run(
        ["apt-config", "-c", str(path), "dump"], capture_output=True, text=True, check=True
    ).stdout


def test_unattended_upgrades_settings_parse_and_reboot_is_opt_in(vm: Path) -> None:
    assert bootstrap(vm, "--only", "upgrades").returncode == 0
    apt = vm / "etc/apt/apt.conf.d"
    assert 'APT::Periodic::Unattended-Upgrade "1";' in apt_config(apt / "20auto-upgrades")
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in apt_config(
        apt / "52driftless-unattended-upgrades"
    )
    assert bootstrap(vm, "--only", "upgrades", "--auto-reboot", "03:30").returncode == 0
    dump = apt_config(apt / "52driftless-unattended-upgrades")
    assert 'Unattended-Upgrade::Automatic-Reboot "true";' in dump
    assert 'Unattended-Upgrade::Automatic-Reboot-Time "03:30";' in dump


def test_every_sysctl_key_exists_in_this_kernel(vm: Path) -> None:
    assert bootstrap(vm, "--only", "sysctl").returncode == 0
    for line in (vm / "etc/sysctl.d/60-driftless.conf").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        proc = Path("/proc/sys") / key.replace(".", "/")
        if key.startswith("net.") and not proc.exists():
            pytest.fail(f"{key} does not exist (network namespace without it?)")
        assert proc.exists(), key
        assert value.isdigit(), key


def test_daemon_json_is_merged_into_an_existing_file(vm: Path) -> None:
    daemon = vm / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text(json.dumps({"data-root": "/srv/docker", "live-restore": True}))
    assert bootstrap(vm, "--only", "daemon").returncode == 0
    data = json.loads(daemon.read_text())
    assert data["data-root"] == "/srv/docker", "the operator's own settings stay"
    assert "live-restore" not in data, "Swarm mode does not support live-restore"
    assert data["log-driver"] == "json-file"
    assert data["log-opts"] == {"max-size": "10m", "max-file": "5", "compress": "true"}


def test_a_broken_daemon_json_stops_the_run_and_stays_as_it_was(vm: Path) -> None:
    daemon = vm / "etc/docker/daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text("{not json")
    result = bootstrap(vm, "--only", "daemon")
    assert result.returncode == 1
    assert "is not valid JSON" in result.stderr
    assert daemon.read_text() == "{not json"


def test_units_and_project_are_installed_where_the_units_expect_them(vm: Path) -> None:
    assert bootstrap(vm, "--repo-url", REPO_URL).returncode == 0
    for unit in (ROOT / "systemd").iterdir():
        assert (vm / "etc/systemd/system" / unit.name).read_text() == unit.read_text()
    src = vm / "opt/driftless/src"
    assert (src / "scripts/backup.sh").stat().st_mode & 0o111
    assert (src / "pyproject.toml").read_text() == (ROOT / "pyproject.toml").read_text()
    assert not (src / ".venv").exists()
    assert not (src / ".cache").exists()
    wrapper = vm / "usr/local/bin/reconciler"
    assert wrapper.stat().st_mode & 0o777 == 0o755
    assert "setpriv --reuid=deploy" in wrapper.read_text()
    lint = subprocess.run(["shellcheck", "-e", "SC1091", str(wrapper)], capture_output=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "everything"], "unknown step 'everything'"),
        (["--auto-reboot", "25:00"], "--auto-reboot: HH:MM expected"),
        (["--swarm-peers", "everyone"], "--swarm-peers: CIDR expected"),
        (["--registry-user", "bot"], "go together"),
        (["--frobnicate"], "unknown option"),
    ],
)
def test_bad_options_are_refused_before_anything_changes(
    vm: Path, args: list[str], message: str
) -> None:
    before = tree_digest(vm)
    result = bootstrap(vm, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert tree_digest(vm) == before


def test_refuses_to_run_live_on_another_os_or_as_a_normal_user() -> None:
    if os.path.exists("/etc/os-release") and "ubuntu" in Path("/etc/os-release").read_text():
        pytest.fail("this test expects a non-Ubuntu test machine")
    result = subprocess.run(
        [str(SCRIPT), "--only", "sysctl"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "made for Ubuntu 24.04" in result.stderr
    assert not Path("/etc/sysctl.d/60-driftless.conf").exists()
