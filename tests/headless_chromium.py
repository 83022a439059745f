"""The Chromium binary and the headless flags both browser tests start it with (tests/ has no __init__)."""

import shutil

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
# no GPU, no network of its own, no first-run or update work: the page under test is all it loads
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
