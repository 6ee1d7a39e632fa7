"""The front door: the README's two commands install pinned versions, and CI runs exactly the
README's test command. A fresh clone must install what the tests last passed with, never
whatever an upstream project released overnight (a new pytest once broke schemathesis's
plugin, and every fresh install with it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    """The shell commands in the README's first two ```sh blocks: install-and-run, test."""
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks[:2]]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            found[canonicalize_name(name)] = version
    return found


def test_both_readme_commands_install_with_the_constraints():
    commands = readme_commands()
    assert len(commands) == 2
    for command in commands:
        installs = [part for part in command.split("&&") if "pip install" in part
                    and "-e" in part]
        assert installs and all("-c constraints.txt" in part for part in installs), command


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert readme_commands()[1] in ci


def test_every_dependency_of_the_package_and_its_tests_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    pinned = pins()
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == "semsearch":  # its own extras: their packages are listed in turn
            continue
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}"
    for extra in ("ray", "bf16"):
        for text in project["optional-dependencies"][extra]:
            assert canonicalize_name(Requirement(text).name) in pinned
    assert "torch" not in pinned  # installed first, from its CPU build, by the README
