"""The chapters read as lectures: short cells, each followed by a sentence, no logic out of sight.

Rules, checked on every notebook's source (no execution):

- a code cell has at most 15 lines, except the papermill ``parameters`` cell (papermill injects
  after the one tagged cell, so splitting it would hide parameters from ``--help-notebook``) and a
  record cell (below);
- a code cell the reader sees in full (no ``remove-cell``, ``remove-input`` or ``hide-input`` tag, not
  the parameters) is followed, past any removed cells, by a markdown cell that does not open with a
  heading: the sentence saying what it shows;
- a cell whose input is removed (``remove-input``, ``remove-cell``) holds no logic: each statement is
  a call, or a name bound to a call, of a module's function (or ``display``, ``glue``, a type
  conversion) whose arguments are names, attributes, subscripts, constants, displays or f-strings of
  them, or such calls (no comprehension, loop, condition, arithmetic, ``min``, ``len``, ...). A
  record cell is such a removed cell opening with ``record = chapters.`` or ``run.record(chapters.``;
  it may run over 15 lines, one argument per line.
- ``hide-input`` cells (imports, set-up) are not checked for logic: their code is one click away.

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
    ast.JoinedStr,
    ast.FormattedValue,
)
# conversions and showing are not logic; min, sum, len, ... are
CALLS = {"int", "float", "str", "list", "display", "glue"}


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def _simple_argument(node: ast.AST) -> bool:
    """A name, attribute, subscript, constant, display or f-string of them, a negative constant, a
    conversion or display of them, or a call of a module's function with such arguments."""
    if isinstance(node, ast.Call):
        known = isinstance(node.func, ast.Attribute) or (
            isinstance(node.func, ast.Name) and node.func.id in CALLS
        )
        return known and all(_simple_argument(a) for a in [node.func, *node.args, *node.keywords])
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
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


def _is_record_cell(source: str, tags: set) -> bool:
    """A hidden ``record = chapters.<x>(...)`` or ``run.record(chapters.<x>(...))`` cell."""
    return bool(tags & HIDDEN) and source.startswith(("record = chapters.", "run.record(chapters."))


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
        if lines > MAX_LINES and "parameters" not in tags and not _is_record_cell(source, tags):
            out.append(f"{name}: {lines} lines, over {MAX_LINES}")
        if tags & HIDDEN and (why := _no_logic(source)):
            out.append(f"{name}: hidden logic, {why}")
        if not tags & (HIDDEN | {"hide-input", "parameters"}):
            after = next((c for c in cells[i + 1 :] if not _tags(c) & HIDDEN), None)
            if after is None or after.cell_type != "markdown" or after.source.lstrip().startswith("#"):
                out.append(f"{name}: no sentence after it (a heading is not one)")
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
    long_record = "record = chapters.c(\n" + "    a,\n" * 20 + ")"
    nb = _notebook(
        ("code", long_cell, ()),
        ("markdown", "What it shows.", ()),
        ("code", "table = f(x)", ()),
        ("code", "g(table)", ()),
        ("markdown", "Both tables.", ()),
        ("code", "out = {k: f(k) for k in keys}", ("remove-input",)),
        ("code", "for k in keys:\n    glue(k, 1)", ("remove-cell",)),
        ("code", "glue('a', f.g(b) / 2)", ("remove-cell",)),
        ("code", "show(x)", ()),
        ("markdown", "## A heading, not a sentence", ()),
        ("code", "record = chapters.c(n=min(n, x.shape[0]))", ("remove-input",)),
        ("code", long_record, ()),  # a visible record cell gets no exemption
        ("markdown", "The record.", ()),
    )
    found = problems(nb)
    expected = {
        0: "16 lines",
        2: "no sentence",
        5: "hidden logic",
        6: "hidden logic",
        7: "hidden logic",
        8: "no sentence",
        10: "hidden logic",
        11: "22 lines",
    }
    for cell, what in expected.items():
        assert any(p.startswith(f"cell {cell} ") and what in p for p in found), (cell, found)
    assert len(found) == len(expected)


def test_the_rules_pass_a_lecture():
    nb = _notebook(
        ("code", "dataset = 'mnist5k'\n" * 20, ("parameters",)),
        ("code", "import x", ("hide-input",)),
        ("code", "table = f(x)", ()),
        ("code", "glue(f'acc_{k}', float(table.loc['a', -1]), display=False)", ("remove-cell",)),
        ("markdown", "The table.", ()),
        ("code", "display(report.t(claims, kind='paper'))", ("remove-input",)),
        ("code", "record = chapters.c(\n" + "    a,\n" * 20 + ")\nrun.record(record);", ("remove-input",)),
        ("code", "report.chapter_claims(record)", ()),
        ("markdown", "The verdicts.", ()),
    )
    assert problems(nb) == []
