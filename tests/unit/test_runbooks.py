"""The runbooks only tell people to run what exists.

Every shell command in a runbook code block, and every project command in inline code, is checked:
project scripts exist (with the subcommands and options used), `make` targets exist, `reconciler`
subcommands and options exist in its CLI, systemd units and stack services are spelled as they are
defined, and any other program is a known system tool. Links between documents and their anchors
resolve, and every alert has its row in TROUBLESHOOTING.md pointing at its section in alerts.md.
"""

from __future__ import annotations

import argparse
import functools
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.md"))
SHELL_FENCE = re.compile(r"^```(sh|bash|shell|console)\s*$(.*?)^```", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PLACEHOLDER = re.compile(r"<[^<>]+>")

# Programs that come with Ubuntu, Docker, or the packages scripts/bootstrap-vm.sh installs.
SYSTEM_TOOLS = {
    ".", "source", "amtool", "apt", "apt-get", "awk", "base64", "cat", "cd", "chmod", "chown", "cp",
    "curl", "date", "df", "dig", "do", "docker", "done", "du", "echo", "export", "fail2ban-client",
    "false", "fi", "for", "free", "getent", "gh", "git", "grep", "head", "htop", "id", "if",
    "install", "ip", "iptables", "jq", "journalctl", "last", "less", "ls", "mkdir", "mv", "openssl",
    "ping", "printf", "promtool", "psql", "pytest", "python3", "rclone", "reboot", "rm", "sed",
    "set",
    "sha256sum", "sleep", "sort", "ssh", "ssh-keygen", "sudo", "sysctl", "systemctl", "tail", "tar",
    "tee", "then", "time", "timedatectl", "top", "true", "ufw", "until", "uptime", "watch", "while",
}  # fmt: skip
PROJECT_PREFIXES = ("scripts/", "./scripts/", "/opt/driftless/src/scripts/", "~/driftless/scripts/")


@functools.cache
def stack_names() -> set[str]:
    names: set[str] = set()
    for path in ("desired-state/base/stack.yml", "desired-state/production/stack.yml"):
        stack = yaml.safe_load((ROOT / path).read_text())
        for section in ("services", "volumes", "networks", "secrets", "configs"):
            names |= set(stack.get(section) or {})
    return names


@functools.cache
def unit_names() -> set[str]:
    return {p.name for p in (ROOT / "systemd").iterdir()}


@functools.cache
def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+):", (ROOT / "Makefile").read_text(), re.M))


@functools.cache
def cli_parser(program: str) -> argparse.ArgumentParser:
    if program == "api":
        from api.cli import _parser as api_parser

        return api_parser()
    from reconciler.cli import _parser

    return _parser()


def shell_lines(text: str) -> list[str]:
    """Commands of the shell code blocks, continuation lines joined, comments dropped."""
    out: list[str] = []
    for block in SHELL_FENCE.finditer(text):
        joined = block.group(2).replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line and not line.startswith("#"):
                out.append(line)
    return out


def commands(line: str) -> list[list[str]]:
    """Split a shell line into simple commands (pipes, lists, $(...) bodies) of words."""
    line = PLACEHOLDER.sub("PLACEHOLDER", line)
    line = re.sub(r"\$\(", " ; ", line).replace(")", " ; ")
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    result: list[list[str]] = [[]]
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote inside an example value
        tokens = line.split()
    redirect = False
    for token in tokens:
        if token and set(token) <= set(";&|"):
            result.append([])
            continue
        if token and set(token) <= set("<>"):
            redirect = True
            continue
        if redirect:
            redirect = False
            continue
        result[-1].append(token)
    return [c for c in result if c]


def strip_prefixes(words: list[str]) -> list[str]:
    while words and (
        words[0] in {"sudo", "time", "exec", "until", "do", "then", "if", "!", "while"}
        or re.match(r"^[A-Z_][A-Z0-9_]*=", words[0])
    ):
        words = words[1:]
    return words


def check_project_script(words: list[str], where: str) -> None:
    path = words[0]
    for prefix in PROJECT_PREFIXES:
        if path.startswith(prefix):
            rel = "scripts/" + path[len(prefix) :]
            break
    script = ROOT / rel
    assert script.is_file(), f"{where}: {path} does not exist ({rel})"
    assert script.stat().st_mode & 0o111, f"{where}: {rel} is not executable"
    source = script.read_text()
    args = [w for w in words[1:] if w != "PLACEHOLDER"]
    for arg in args:
        if arg.startswith("--"):
            option = arg.split("=", 1)[0]
            assert option in source, f"{where}: {rel} has no option {option}"
    positional = [a for a in args if not a.startswith("-")]
    if positional and re.search(r"^\s*case \"\$(cmd|1|\{1:-\})", source, re.M):
        sub = positional[0]
        if re.match(r"^[a-z][a-z-]*$", sub):
            assert re.search(rf"^\s*{re.escape(sub)}( \||\))", source, re.M), (
                f"{where}: {rel} has no subcommand {sub!r}"
            )


def check_cli(words: list[str], where: str) -> None:
    """`reconciler ...` or `api ...`: the subcommand and every option exist in its argparse CLI."""
    program = words[0]
    parser = cli_parser(program)
    sub_actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sub_actions
    choices = sub_actions[0].choices
    top_options = {s for a in parser._actions for s in a.option_strings}
    args = [w for w in words[1:] if w != "PLACEHOLDER"]
    i = 0
    while i < len(args) and args[i].startswith("-"):
        assert args[i].split("=")[0] in top_options, f"{where}: {program} has no option {args[i]}"
        i += 2 if args[i] in {"--config", "--log-level", "--log-format"} else 1
    if i == len(args):
        return
    sub = args[i]
    assert sub in choices, f"{where}: {program} has no subcommand {sub!r} ({sorted(choices)})"
    options = {s for a in choices[sub]._actions for s in a.option_strings}
    for arg in args[i + 1 :]:
        if arg.startswith("-"):
            assert arg.split("=")[0] in options, f"{where}: {program} {sub} has no option {arg}"


def check_names(words: list[str], where: str) -> None:
    stack = stack_names()
    units = unit_names()
    for word in words:
        for name in re.findall(r"\bdriftless_([a-z][a-z0-9_-]*[a-z0-9])", word):
            assert name in stack, f"{where}: no service/volume/secret {name!r} in stack.yml"
        for unit in re.findall(
            r"\b((?:driftless-[a-z-]+(?:@[^\s.]*)?|reconciler)\.(?:service|timer))", word
        ):
            base = re.sub(r"@[^.]*\.", "@.", unit)
            assert base in units, f"{where}: no systemd unit {unit} in systemd/"


def check_make_targets(words: list[str], where: str) -> None:
    for target in words[1:]:
        if not target.startswith("-"):
            assert target in make_targets(), f"{where}: no make target {target!r}"


def check_docker(words: list[str], where: str) -> None:
    """`docker exec [options] CONTAINER api ...` runs the project's CLI inside a task."""
    if "exec" not in words:
        check_system_tool(words, where)
        return
    for i, word in enumerate(words[2:], start=2):
        if word in {"api", "reconciler"} and not words[i - 1].startswith("-"):
            check_cli(words[i:], where)
            return


def check_system_tool(words: list[str], where: str) -> None:
    program = words[0]
    assert program in SYSTEM_TOOLS or program == "PLACEHOLDER", (
        f"{where}: `{program}` is neither a project command nor a known system tool"
    )


# how a command is checked, by its program; a program not here must be a system tool (the names
# of units and stack services in any command are checked by check_names)
PROGRAM_CHECKS: dict[str, Callable[[list[str], str], None]] = {
    "make": check_make_targets,
    "reconciler": check_cli,
    "api": check_cli,
    "docker": check_docker,
}


def check_command(words: list[str], where: str) -> None:
    words = strip_prefixes(words)
    if not words:
        return
    check_names(words, where)
    if words[0].startswith(PROJECT_PREFIXES):
        check_project_script(words, where)
    else:
        PROGRAM_CHECKS.get(words[0], check_system_tool)(words, where)


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_every_command_in_code_blocks_exists(path: Path) -> None:
    for line in shell_lines(path.read_text()):
        for words in commands(line):
            check_command(words, f"{path.name}: {line}")


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_project_commands_in_inline_code_exist(path: Path) -> None:
    text = SHELL_FENCE.sub("", path.read_text())
    for span in INLINE.findall(text):
        words = strip_prefixes(span.split())
        if not words:
            continue
        first = words[0]
        if first.startswith(PROJECT_PREFIXES) or first in {"make", "reconciler", "api"}:
            for command in commands(span):
                check_command(command, f"{path.name}: `{span}`")
        elif re.fullmatch(r"[\w-]+\.sh", first) and (ROOT / "scripts" / first).exists():
            check_project_script(["scripts/" + first, *span.split()[1:]], f"{path.name}: `{span}`")
        elif first in {"docker", "systemctl", "journalctl"}:
            check_names(words, f"{path.name}: `{span}`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@functools.cache
def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_links_and_anchors_resolve(path: Path) -> None:
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name}: link to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name}: no section #{anchor} in {file_part}"


def test_every_alert_is_in_troubleshooting_with_its_runbook_section() -> None:
    rules = yaml.safe_load((ROOT / "observability/prometheus/rules/alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts
    troubleshooting = (ROOT / "runbooks/TROUBLESHOOTING.md").read_text()
    sections = anchors(ROOT / "runbooks/alerts.md")
    for alert in alerts:
        assert slug(alert) in sections, f"alerts.md has no section for {alert}"
        assert f"| {alert} |" in troubleshooting, f"TROUBLESHOOTING.md has no row for {alert}"
        assert f"(alerts.md#{slug(alert)})" in troubleshooting, f"no link for {alert}"


def test_the_checker_catches_what_does_not_exist() -> None:
    bad = [
        "sudo scripts/no-such-script.sh",
        "scripts/backup.sh postgres --no-such-option",
        "scripts/restore.sh unrestore FILE",
        "make no-such-target",
        "reconciler teleport",
        "reconciler status --no-such-flag",
        "docker service logs driftless_no-such-service",
        "systemctl start driftless-no-such.timer",
        "driftlessctl deploy",
        'docker exec -i "$API" api make-admin --email a@b',
        "api serve --workers 4",
    ]
    for line in bad:
        with pytest.raises(AssertionError):
            check_line(line)
    for line in (
        "sudo /opt/driftless/src/scripts/backup.sh postgres --label before-upgrade",
        "reconciler --config /etc/reconciler/config.yaml status --json",
        "docker service scale driftless_api=0 && systemctl stop reconciler",
        'IP="$(docker inspect -f x dr-drill)"',
        'docker exec -i "$API" api create-admin --email a@example.org --password-file /dev/stdin',
    ):
        check_line(line)


def check_line(line: str) -> None:
    for words in commands(line):
        check_command(words, line)


MERMAID = ROOT / "tests" / "ops_support" / "mermaid"


def mermaid_parse(*files: Path) -> subprocess.CompletedProcess[str]:
    if not (MERMAID / "node_modules" / "mermaid").is_dir():
        pytest.fail("Mermaid is not installed: run scripts/deps.sh node", pytrace=False)
    return subprocess.run(
        ["node", str(MERMAID / "parse.mjs"), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_every_mermaid_diagram_parses() -> None:
    """With Mermaid's own parser, the one GitHub renders the diagrams with."""
    documents = [p for p in RUNBOOKS if "```mermaid" in p.read_text()]
    assert ROOT / "runbooks" / "ARCHITECTURE.md" in documents
    result = mermaid_parse(*documents)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") >= 5


def test_the_mermaid_check_rejects_a_broken_diagram(tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text("```mermaid\nflowchart LR\n  a --> b[unclosed\n```\n")
    result = mermaid_parse(broken)
    assert result.returncode == 1
    assert "FAIL" in result.stdout


def section(path: Path, heading: str) -> str:
    """The text of the `## heading` section of a document, up to the next `## `."""
    text = path.read_text()
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{path.name} has no section '## {heading}'"
    return match.group(1)


def test_the_runbooks_cover_what_operators_need() -> None:
    names = {p.name for p in RUNBOOKS}
    assert {
        "DEPLOYMENT_GUIDE.md",
        "MONITORING_SETUP.md",
        "TROUBLESHOOTING.md",
        "BACKUP_RECOVERY.md",
        "INCIDENT_RESPONSE.md",
        "SCALING.md",
        "UPDATES.md",
        "ARCHITECTURE.md",
        "CONFIGURATION.md",
    } <= names
    arch = ROOT / "runbooks" / "ARCHITECTURE.md"
    for heading in ("System", "Network topology", "Data flow", "Security"):
        assert "```mermaid" in section(arch, heading), f"ARCHITECTURE.md: {heading} has no diagram"
    flows = section(arch, "Data flow")
    for path in ("Metrics", "Logs", "Deployments"):
        assert f"| {path} |" in flows, f"ARCHITECTURE.md: the {path.lower()} path is not described"
    network = section(arch, "Network topology")
    for name in ("edge", "backend", "monitoring", "443"):
        assert name in network, f"ARCHITECTURE.md: {name} is missing from the network topology"
    release = section(ROOT / "runbooks" / "DEPLOYMENT_GUIDE.md", "How a release flows")
    for step in ("build.yml", "pull request", "merge", "reconciler"):
        assert step in release.lower() or step in release, f"release flow: no {step}"
    backups = ROOT / "runbooks" / "BACKUP_RECOVERY.md"
    assert "scripts/restore.sh" in section(
        backups, "Disaster-recovery drill (every quarter, 30 minutes)"
    )
    scaling = (ROOT / "runbooks" / "SCALING.md").read_text()
    assert "## More API replicas" in scaling
    assert "## More Swarm nodes" in scaling
