"""The package's import graph, read with ``ast``: layers that import only downward.

Rules, checked on every module of ``advexp_lib`` and of the book's package ``advexp_book``:

- every module is placed in ``advexp_lib.LAYERS``;
- a module imports only modules listed before it (no import against the layer order);
- the import graph has no cycle;
- no sibling module is imported inside a function (a lazy import hiding a cycle);
- no private name (``_x``) of another module is imported or used.

:func:`violations` takes the sources as a dict, so the rules are also checked on
a deliberately broken package (a test below), not only on a clean one.
"""

import ast
import re
from pathlib import Path

import advexp_book
import advexp_lib

PACKAGE = Path(advexp_lib.__file__).resolve().parent
BOOK = Path(advexp_book.__file__).resolve().parent


def _sources(package: Path = PACKAGE) -> dict[str, str]:
    """Module name (``attacks.search`` for a subpackage's module, ``attacks`` for its __init__) -> code."""
    out = {}
    for p in sorted(package.rglob("*.py")):
        parts = p.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = p.read_text()
    return out


def _resolve(module: str, node: ast.ImportFrom, is_package: bool, top: str = "advexp_lib") -> str | None:
    """The absolute module (without ``top.``) a ``from`` import names, or None outside the package ``top``."""
    if node.level == 0:
        name = node.module or ""
        if name == top:
            return ""
        return name.removeprefix(top + ".") if name.startswith(top + ".") else None
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _sibling(node, names, module: str, is_package: bool = False, top: str = "advexp_lib") -> list:
    """(module, imported names) for each sibling module (of the package ``top``) an import node brings in."""
    out = []
    if isinstance(node, ast.ImportFrom):
        target = _resolve(module, node, is_package, top)
        if target is None:
            return out
        if target in names:
            out.append((target, [a.name for a in node.names]))
        else:  # from . import a, b / from .attacks import search: the names are modules
            for a in node.names:
                sub = f"{target}.{a.name}" if target else a.name
                if sub in names:
                    out.append((sub, []))
    elif isinstance(node, ast.Import):
        out += [
            (a.name.removeprefix(top + "."), [])
            for a in node.names
            if a.name.startswith(top + ".") and a.name.removeprefix(top + ".") in names
        ]
    return out


LAZY = {"cli"}  # imports what a command runs when it runs, so --help needs no torch (still downward only)


def violations(sources: dict[str, str], layers, lazy=LAZY, top: str = "advexp_lib") -> list[str]:
    """Every broken rule in ``sources`` (module -> code, of the package ``top``) under the order ``layers``.

    Modules in ``lazy`` may import inside functions; every import still has to go downward.
    """
    order = [m for layer in layers for m in layer]
    rank = {m: i for i, m in enumerate(order)}
    found = [f"{m}: not placed in LAYERS" for m in sources if m not in rank]
    graph = {m: set() for m in sources}
    for mod, code in sources.items():
        tree = ast.parse(code)
        top_level = {id(n) for n in tree.body}
        aliases = {}  # local name -> sibling module, for attribute access like attacks._nhwc
        is_package = any(m.startswith(mod + ".") for m in sources)
        for node in ast.walk(tree):
            for target, imported in _sibling(node, sources, mod, is_package, top):
                graph[mod].add(target)
                if id(node) not in top_level and not _guarded_top_level(tree, node) and mod not in lazy:
                    found.append(f"{mod}: imports {target} inside a function (line {node.lineno})")
                if mod in rank and target in rank and rank[target] >= rank[mod]:
                    found.append(f"{mod}: imports {target}, which is not below it in LAYERS")
                found += [
                    f"{mod}: imports the private name {target}.{n}" for n in imported if n.startswith("_")
                ]
                if not imported:
                    aliases[target.split(".")[-1]] = target
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                found.append(f"{mod}: uses the private name {aliases[node.value.id]}.{node.attr}")
    found += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return found


def _guarded_top_level(tree, node) -> bool:
    """An import in a module-level ``if``/``try`` block (not in a function) still counts as top level."""
    for top in tree.body:
        if isinstance(top, (ast.If, ast.Try)) and any(n is node for n in ast.walk(top)):
            return True
    return False


def _cycles(graph) -> list[list[str]]:
    cycles, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                cycles.append(path[path.index(n) :] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_the_package_imports_only_downward():
    assert violations(_sources(), advexp_lib.LAYERS) == []


def test_every_layer_module_exists():
    assert {m for layer in advexp_lib.LAYERS for m in layer} == set(_sources())
    assert {m for layer in advexp_book.LAYERS for m in layer} == set(_sources(BOOK))


def test_the_book_package_imports_only_downward():
    assert violations(_sources(BOOK), advexp_book.LAYERS, lazy=(), top="advexp_book") == []


def _imports_of(code: str) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every import statement in ``code``."""
    out = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_the_library_never_imports_the_book_and_the_book_uses_its_public_names():
    for mod, code in _sources().items():
        assert not [m for m, _ in _imports_of(code) if m.split(".")[0] == "advexp_book"], mod
    for mod, code in _sources(BOOK).items():
        private = [f"{m}.{n}" for m, names in _imports_of(code) if m.startswith("advexp_lib") for n in names]
        assert not [p for p in private if p.rsplit(".", 1)[1].startswith("_")], mod


def test_the_cross_package_rules_say_no():
    """The two checks above fail on a library that imports the book and a book that takes a private name."""
    assert _imports_of("from advexp_book.report import claims_table\n")[0][0].split(".")[0] == "advexp_book"
    assert _imports_of("from advexp_lib.models import _nhwc\n") == [("advexp_lib.models", ["_nhwc"])]
    up = {"claims": "from .report import claims_table\n", "report": "from .claims import CLAIMS\n"}
    assert "claims: imports report, which is not below it in LAYERS" in violations(
        up, (("claims",), ("report",)), lazy=(), top="advexp_book"
    )


def test_each_rule_says_no_on_a_broken_package():
    base = {
        "checks": "import math\n",
        "attacks": "from .checks import check_images\n",
        "metrics": "from .attacks import pgd\n",
    }
    layers = (("checks",), ("attacks",), ("metrics",))
    assert violations(base, layers) == []
    cycle = {**base, "checks": "from .metrics import accuracy\n"}
    found = violations(cycle, layers)
    assert "checks: imports metrics, which is not below it in LAYERS" in found
    assert any(v.startswith("import cycle: ") and "metrics" in v and "checks" in v for v in found)
    lazy = {**base, "attacks": "def f():\n    from .metrics import accuracy\n    return accuracy\n"}
    assert "attacks: imports metrics inside a function (line 2)" in violations(lazy, layers)
    # a module allowed to import lazily still may not import upward
    assert "attacks: imports metrics, which is not below it in LAYERS" in violations(
        lazy, layers, {"attacks"}
    )
    down = {**base, "metrics": "def f():\n    from .attacks import pgd\n    return pgd\n"}
    assert violations(down, layers, {"metrics"}) == []
    private = {**base, "metrics": "from .attacks import _nhwc\nfrom . import checks\nchecks._private()\n"}
    found = violations(private, layers)
    assert "metrics: imports the private name attacks._nhwc" in found
    assert "metrics: uses the private name checks._private" in found
    assert violations({**base, "stray": "x = 1\n"}, layers) == ["stray: not placed in LAYERS"]
    # a subpackage: its modules' relative imports resolve from the subpackage
    sub = {**base, "attacks": "from .search import f\n", "attacks.search": "from ..checks import g\n"}
    sub_layers = (("checks",), ("attacks.search", "attacks"), ("metrics",))
    assert violations({**sub, "metrics": "from .attacks import f\n"}, sub_layers) == []
    up = {**sub, "attacks.search": "from ..metrics import h\n", "metrics": "x = 1\n"}
    assert "attacks.search: imports metrics, which is not below it in LAYERS" in violations(up, sub_layers)


def test_the_api_page_documents_every_module():
    api = (PACKAGE.parent / "book" / "api.md").read_text()
    documented = set(re.findall(r"automodule:: advexp_lib\.([\w.]+)", api))
    assert documented == {m for layer in advexp_lib.LAYERS for m in layer} - {"__main__"}
    documented = set(re.findall(r"automodule:: advexp_book\.([\w.]+)", api))
    assert documented == {m for layer in advexp_book.LAYERS for m in layer} - {"__main__"}
