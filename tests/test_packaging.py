"""The project's set-up files agree with each other, and with what the library imports."""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# tools of the book and the notebooks: never a core dependency of the library
TOOLS = {"jupyterlab", "jupyter-book", "papermill", "nbval", "ipywidgets", "ipykernel", "nbstripout"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements(extras=True) -> list[str]:
    """The core requirements, then every extra's (without the self-referencing ``advexp_lib[...]``)."""
    reqs = list(PROJECT["dependencies"])
    for items in PROJECT["optional-dependencies"].values() if extras else ():
        reqs += [r for r in items if _name(r) != _name(PROJECT["name"]) and r not in reqs]
    return reqs


def test_environment_yml_lists_the_pyproject_packages():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(_requirements())


def test_extras_hold_the_tools_and_all_holds_every_extra():
    extras = PROJECT["optional-dependencies"]
    assert not TOOLS & {_name(r) for r in PROJECT["dependencies"]}, (
        "a notebook/book tool is a core dependency"
    )
    everything = {_name(r) for items in extras.values() for r in items}
    assert TOOLS <= everything
    assert extras["all"] == [f"{PROJECT['name']}[{','.join(e for e in extras if e != 'all')}]"]


def _imports() -> dict[str, set[str]]:
    """Top-level modules the library imports: {"module": ...} and {"function": ...} (lazy, optional)."""
    found = {"module": set(), "function": set()}
    for path in (ROOT / "advexp_lib").rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root not in sys.stdlib_module_names and root not in ("advexp_lib", "__future__"):
                    found["module" if id(node) in top else "function"].add(root)
    return found


def test_core_dependencies_are_what_the_library_imports():
    dists = importlib.metadata.packages_distributions()
    core = {_name(r) for r in PROJECT["dependencies"]}
    optional = {_name(r) for r in _requirements()} - core
    imports = _imports()

    def dist(module):
        return {_name(d) for d in dists.get(module, [module])}

    for module in imports["module"]:  # imported when the library is: must come with `pip install advexp_lib`
        assert dist(module) & core, f"advexp_lib imports {module} at module level: not a core dependency"
    for module in imports["function"] - imports["module"]:
        assert dist(module) & (core | optional) or module == "IPython", f"{module}: declared nowhere"
    imported = set().union(*(dist(m) for m in imports["module"] | imports["function"]))
    assert core <= imported, f"core dependencies the library never imports: {core - imported}"


def test_the_library_and_its_cli_work_without_the_notebook_tools():
    blocked = ["ipywidgets", "IPython", "ipykernel", "jupyterlab", "jupyter_server", "jupyter_book"]
    blocked += ["papermill", "nbval", "nbformat", "nbstripout", "pytest"]
    code = f"""
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")

sys.meta_path.insert(0, Block())
import advexp_lib
for m in pkgutil.walk_packages(advexp_lib.__path__, "advexp_lib."):  # __main__ would run the CLI
    if m.name != "advexp_lib.__main__":
        importlib.import_module(m.name)
from advexp_lib import widgets
try:
    widgets.Explorer({{}}, None, None)
except ImportError as err:
    print(err)
from advexp_lib.cli import main
main(["--help"])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pip install 'advexp_lib[widgets]'" in proc.stdout and "usage: python -m advexp_lib" in proc.stdout


def test_lock_pins_every_dependency_within_its_range():
    from packaging.requirements import Requirement

    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[_name(name)] = version
    for req in _requirements():
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


def _git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_stored_notebooks_are_what_the_git_filter_stores(tmp_path):
    """After bootstrap configures the filter, a fresh checkout must not look modified: stored == cleaned."""
    for f in [ROOT / ".gitattributes", *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        shutil.copy(f, tmp_path / f.name)
    _git(tmp_path, "init", "-q")
    script = ROOT / "scripts" / "notebook_filter.sh"
    for _ in range(2):  # idempotent
        subprocess.run(["bash", str(script), sys.executable], cwd=tmp_path, check=True)
    assert _git(tmp_path, "config", "--get-all", "filter.nbstripout.clean").count("nbstripout") == 1
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "notebooks")
    for nb in sorted(tmp_path.glob("*.ipynb")):
        stored = subprocess.run(
            ["git", "show", f"HEAD:{nb.name}"], cwd=tmp_path, capture_output=True, check=True
        ).stdout
        assert stored == nb.read_bytes(), f"{nb.name}: git's filter changes it (run the filter over it once)"


def test_notebook_filter_set_up_is_a_no_op_outside_git(tmp_path):
    script = ROOT / "scripts" / "notebook_filter.sh"
    proc = subprocess.run(["bash", str(script), sys.executable], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == proc.stderr == "" and not list(tmp_path.iterdir())


def test_the_wheel_ships_every_module_and_checkpoint(tmp_path):
    # a non-editable install gets only what the wheel holds: the zoo falls back to these files
    scratch = ROOT / "build"  # setuptools' own build folder; removed after if this test made it
    made = not scratch.exists()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    if made:
        shutil.rmtree(scratch, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "absent from the `packages` configuration" not in proc.stderr
    (wheel,) = tmp_path.glob("*.whl")
    held = {Path(n).name for n in zipfile.ZipFile(wheel).namelist() if "/checkpoints/" in n}
    folder = ROOT / "advexp_lib" / "checkpoints"
    shipped = {p.name for p in folder.iterdir() if p.suffix in (".pt", ".json")}
    assert shipped and held == shipped
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "advexp_lib").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    assert not [n for n in names if n.startswith("advexp_book/")], "the book's package is not the library's"
