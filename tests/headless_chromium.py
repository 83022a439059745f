"""The Chromium binary and the headless flags both browser tests start it with (tests/ has no __init__)."""

import shutil

# looked up once: each browser test skips (or fails under CI) on this value and starts this same binary
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
MISSING = "no chromium/chrome binary on PATH (apt-get install chromium)"
# no GPU, no network of its own, no first-run or update work: the page under test is all it loads
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
