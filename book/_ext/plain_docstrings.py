"""Sphinx extension: render advexp_lib's plain-text docstrings literally on the API page.

The library's docstrings write formulas as plain text (Captum's style: ``|x|``,
``lr *= gamma``, ``a * b``), which reStructuredText would read as substitution
references and emphasis. This hook, run after napoleon, escapes ``|`` and ``*``
outside inline literals, roles and ``::`` literal blocks, so the text shows as written.
"""

import re

_LITERAL = re.compile(r"(``.+?``|:[\w:]+:`[^`]*`|`[^`]*`_?)")
_SPECIAL = re.compile(r"(?<!\\)([|*])")


def _escape(line: str) -> str:
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else _SPECIAL.sub(r"\\\1", p) for i, p in enumerate(parts))


def _process(app, what, name, obj, options, lines):
    literal_indent = None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not line.strip() or indent > literal_indent:
                continue
            literal_indent = None
        if line.lstrip().startswith((":param", ":type", ":rtype", ":returns", ":raises")):
            head, sep, rest = line.partition(": ") if line.count(":") >= 2 else (line, "", "")
            lines[i] = head + sep + _escape(rest) if sep else line
        elif not line.lstrip().startswith(".. "):
            lines[i] = _escape(line)
        if line.rstrip().endswith("::"):
            literal_indent = indent


def setup(app):
    app.connect("autodoc-process-docstring", _process, priority=600)  # after napoleon (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
