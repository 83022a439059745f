"""The chapters read as lectures: short cells, each followed by a sentence, no logic out of sight.

Rules, checked on every notebook's source (no execution):

- a code cell has at most 15 lines, except the papermill ``parameters`` cell (papermill injects
  after the one tagged cell, so splitting it would hide parameters from ``--help-notebook``) and a
  record cell (below);
- a code cell the reader sees in full (no ``remove-cell``, ``remove-input`` or ``hide-input`` tag, not
  the parameters) is followed, past any removed cells, by a markdown cell: the sentence saying what it
  shows;
- a cell whose input is hidden (``remove-input``, ``remove-cell``) holds no logic: each statement is a
  call, or a name bound to a call, whose arguments are names, attributes, subscripts or constants
  (no comprehension, loop, condition or arithmetic); a record cell is ``record = chapters.<x>(...)``
  or a ``run.record(...)`` of such a call, which may run over 15 lines, one argument per line.

:func:`problems` takes a notebook object, so the rules are also checked on broken cells below.
"""

import ast
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_LINES = 15
HIDDEN = {"remove-cell", "remove-input"}
SIMPLE = (
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.Starred,
    ast.keyword,
    ast.Load,
    ast.Tuple,
    ast.List,
    ast.Dict,
)


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _simple_argument(node: ast.AST) -> bool:
    """A name, attribute, subscript, constant or a call of them (nothing computed in sight)."""
    if isinstance(node, ast.Call):
        return _simple_argument(node.func) and all(
            _simple_argument(a) for a in [*node.args, *(k.value for k in node.keywords)]
        )
    return isinstance(node, SIMPLE) and all(_simple_argument(c) for c in ast.iter_child_nodes(node))


def _no_logic(source: str) -> str | None:
    """None, or why a hidden cell's source holds logic."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "not plain Python"
    for stmt in tree.body:
        value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
        if not isinstance(value, ast.Call) or not _simple_argument(value):
            return f"line {stmt.lineno} is not one call of names: {ast.unparse(stmt)[:60]!r}"
    return None


def _is_record_cell(source: str) -> bool:
    return "chapters." in source.split("\n", 1)[0] or source.startswith("run.record(")


def problems(nb) -> list[str]:
    """Every rule the notebook ``nb`` breaks, one line each, naming the cell."""
    out = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        tags, source = _tags(cell), cell.source.strip()
        name = f"cell {i} ({source.splitlines()[0][:40] if source else 'empty'})"
        lines = len(source.splitlines())
        if lines > MAX_LINES and "parameters" not in tags and not _is_record_cell(source):
            out.append(f"{name}: {lines} lines, over {MAX_LINES}")
        if tags & HIDDEN and (why := _no_logic(source)):
            out.append(f"{name}: hidden logic, {why}")
        if not tags & (HIDDEN | {"hide-input", "parameters"}):
            after = next((c for c in cells[i + 1 :] if not _tags(c) & HIDDEN), None)
            if after is None or after.cell_type != "markdown":
                out.append(f"{name}: no sentence after it")
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_reads_as_a_lecture(path):
    assert problems(nbformat.read(path, as_version=4)) == []


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(source, metadata={"tags": list(tags)}))
    return nb


def test_the_rules_say_no():
    long_cell = "\n".join(f"a{i} = f({i})" for i in range(16))
    nb = _notebook(
        ("code", long_cell, ()),
        ("markdown", "What it shows.", ()),
        ("code", "table = f(x)", ()),
        ("code", "g(table)", ()),
        ("markdown", "Both tables.", ()),
        ("code", "out = {k: f(k) for k in keys}", ("remove-input",)),
        ("code", "for k in keys:\n    glue(k, 1)", ("remove-cell",)),
        ("code", "glue('a', f(b) / 2)", ("remove-cell",)),
        ("code", "show(x)", ()),
    )
    found = problems(nb)
    assert any("cell 0" in p and "16 lines" in p for p in found)
    assert any("cell 2" in p and "no sentence" in p for p in found)
    assert any("cell 5" in p and "hidden logic" in p for p in found)
    assert any("cell 6" in p and "hidden logic" in p for p in found)
    assert any("cell 7" in p and "hidden logic" in p for p in found)
    assert any("cell 8" in p and "no sentence" in p for p in found)
    assert len(found) == 6


def test_the_rules_pass_a_lecture():
    nb = _notebook(
        ("code", "dataset = 'mnist5k'\n" * 20, ("parameters",)),
        ("code", "import x", ("hide-input",)),
        ("code", "table = f(x)", ()),
        ("code", "glue('acc', table.loc['a', 'b'], display=False)", ("remove-cell",)),
        ("markdown", "The table.", ()),
        ("code", "record = chapters.c(\n" + "    a,\n" * 20 + ")\nrun.record(record);", ("remove-input",)),
        ("code", "report.chapter_claims(record)", ()),
        ("markdown", "The verdicts.", ()),
    )
    assert problems(nb) == []
