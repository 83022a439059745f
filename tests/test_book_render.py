"""The rendered book in a headless browser: notebook pages carry their figures.

Skipped unless the book has been built (``_build/html``, by ``python -m advexp_lib book``)
and a Chromium binary is installed; it renders the page with JavaScript on
(``--dump-dom``) so it sees what a reader's browser sees.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
# page -> minimum number of figures (img tags with inline data or _images/ sources) it must show
PAGES = {
    "notebooks/03_ara_evaluation.html": 4,
    "notebooks/05_interactive_explorer.html": 1,
    "notebooks/01_explanations_under_attack.html": 3,
}

pytestmark = [
    pytest.mark.skipif(
        not HTML.is_dir(), reason=f"book not built: {HTML} missing (run python -m advexp_lib book)"
    ),
    pytest.mark.skipif(
        CHROMIUM is None, reason="no chromium/chrome binary on PATH (apt-get install chromium)"
    ),
]


def _dom(page: Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("name,minimum", sorted(PAGES.items()))
def test_notebook_page_shows_its_figures(name, minimum):
    page = HTML / name
    if not page.is_file():
        pytest.skip(f"{name} not in this build")
    dom = _dom(page)
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]+)\"", dom)
    figures = [s for s in srcs if s.startswith("data:image") or "_images/" in s]
    assert len(figures) >= minimum, f"{name}: {len(figures)} figure(s), expected >= {minimum}: {srcs[:5]}"
    for s in figures:
        if "_images/" in s:  # linked figures must exist on disk
            assert (page.parent / s).resolve().is_file(), f"{name}: missing image file {s}"
    assert "Traceback" not in dom, f"{name}: a cell error was rendered"


def test_formulas_are_typeset_offline_by_the_bundled_mathjax():
    page = HTML / "book" / "background.html"
    if not page.is_file():
        pytest.skip("background chapter not in this build")
    html = page.read_text()
    scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]*mathjax[^\"]*)\"", html, flags=re.I)
    assert scripts and all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    assert (page.parent / scripts[0]).resolve().is_file(), f"MathJax not copied into the build: {scripts[0]}"
    dom = _dom(page)
    assert dom.count("<mjx-container") >= 10, "formulas were not typeset (raw \\( \\) left in the page)"
