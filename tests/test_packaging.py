"""The project's set-up files agree with each other."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_pyproject_packages():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == wanted


def test_lock_pins_every_dependency_within_its_range():
    from packaging.requirements import Requirement

    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        r = Requirement(req)
        assert _name(r.name) in lock, f"{r.name} is not pinned in requirements.lock"
        assert r.specifier.contains(lock[_name(r.name)]), (
            f"{r.name}=={lock[_name(r.name)]} outside {r.specifier}"
        )
    assert lock["torch"] == "2.14.1" and lock["torchvision"] == "0.29.1"


def test_readme_commands_exist_and_ci_calls_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/main.sh" in readme and "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
