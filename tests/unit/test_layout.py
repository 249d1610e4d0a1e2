"""The repository keeps the layout the README promises."""

from pathlib import Path

import api
import reconciler


def test_packages_have_versions() -> None:
    assert api.__version__
    assert reconciler.__version__


def test_ci_runs_the_readme_test_command(repo_root: Path) -> None:
    ci = (repo_root / ".ci" / "run").read_text()
    readme = (repo_root / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0]  # the two commands, near the top
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert commands == ["./scripts/up.sh", "./scripts/test.sh"]
    # the README's test command, as a user types it (the whole line), is the line CI runs
    assert block.splitlines()[1] in ci.splitlines()
