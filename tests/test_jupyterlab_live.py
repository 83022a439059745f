"""The explorer (notebook 05) in a live JupyterLab, driven in headless Chromium over the DevTools protocol.

A copy of the notebook goes into a scratch git repository with this checkout's
``.gitattributes`` and notebook filter (``scripts/notebook_filter.sh``). JupyterLab
serves it on 127.0.0.1 with a random token; its kernels import this checkout's
``advexp_lib`` (``PYTHONPATH``) and run in smoke mode (``ADVEXP_SMOKE=1``).
Chromium opens the notebook, runs all cells through JupyterLab's own command,
moves the explorer's "target class" slider with the keyboard, and saves.

Asserted: the figure in the widget's output is replaced by a new one; no cell
has an error output; the browser logged no error; the kernel printed no
traceback; after saving, ``git status`` of the scratch repository is clean
(JupyterLab loads ``scripts/jupyter_server_config.py`` as ``bootstrap.sh``
installs it). JupyterLab, its kernel and Chromium are stopped by their PIDs
when the test ends, pass or fail.

Without Chromium, JupyterLab or websocket-client the test skips and says why;
with ``CI=true`` it fails instead (as ``tests/test_book_render.py``).
"""

import base64
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from headless_chromium import CHROMIUM, HEADLESS, MISSING

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_interactive_explorer.ipynb"
SLIDER = "target class"  # the explorer control the test moves

pytestmark = pytest.mark.browser


def _need(ok: bool, why: str) -> None:
    """Skip (a user's run) or fail (CI) when a prerequisite is missing."""
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float, every: float = 0.25):
    """Poll ``check()`` until it returns a truthy value (returned); fail naming ``what`` after ``timeout``."""
    end, last = time.monotonic() + timeout, None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


class _Process:
    """A process of the test (started in its own session) and, at stop, its descendants, by PID."""

    def __init__(self, name: str, cmd: list, log: Path, **kwargs):
        self.name, self.log = name, log
        self._out = open(log, "wb")
        self.popen = subprocess.Popen(
            cmd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def family(self) -> list:
        """The process and its descendants now running (psutil.Process objects)."""
        import psutil

        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self, also=()) -> list[int]:
        """SIGTERM the process, then SIGKILL whatever of it, its descendants and ``also`` still runs.

        Returns the PIDs stopped; fails if one survives SIGKILL.
        """
        import psutil

        family = list({p.pid: p for p in [*self.family(), *also]}.values())
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        _, survivors = psutil.wait_procs(family, timeout=5)
        for p in survivors:  # e.g. a kernel (own session) or a Chromium helper left behind
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        _, survivors = psutil.wait_procs(survivors, timeout=5)
        self._out.close()
        assert not survivors, f"{self.name}: processes still running after SIGKILL: {survivors}"
        return [p.pid for p in family]


class _DevTools:
    """A minimal Chrome DevTools Protocol client: commands, and every event kept in ``events``."""

    def __init__(self, url: str):
        import websocket

        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.events, self._id = [], 0

    def call(self, method: str, **params):
        import websocket

        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                pytest.fail(f"DevTools {method}: no answer within {self.ws.gettimeout():.0f} s")
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AssertionError(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def js(self, expression: str):
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(f"page script failed: {res['exceptionDetails']}\n{expression}")
        return res["result"].get("value")

    def drain(self, seconds: float = 0.5) -> None:
        """Read the events that arrived since the last command."""
        import websocket

        self.ws.settimeout(seconds)
        try:
            while True:
                self.events.append(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(60)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(
                    "console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
                )
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out


# JavaScript run in the page. `nb()` is JupyterLab's panel of the notebook in the main area (window.jupyterapp
# exists because the server is started with --LabApp.expose_app_in_browser; a headless page has no focus, so
# shell.currentWidget stays null).
_JS = """
var nb = () => window.jupyterapp && [...window.jupyterapp.shell.widgets('main')]
    .find(w => w.context && w.context.path.endsWith(%(name)s));
var kernelStatus = () => { const s = nb() && nb().sessionContext.session;
                           return s && s.kernel ? s.kernel.status : null; };
var codeCells = () => nb().content.widgets.filter(c => c.model.type === 'code');
var slider = () => [...nb().node.querySelectorAll('.widget-slider')]
    .find(s => s.querySelector('.widget-label').textContent.trim() === %(slider)s);
var figure = () => { const o = nb().node.querySelector('.widget-vbox .widget-output img');
                     return o ? o.getAttribute('src') : null; };
"""


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a copy of notebook 05 in a scratch git repository; yields (url, folder, server)."""
    for module in ("jupyterlab", "websocket", "psutil", "nbstripout"):
        _need(
            importlib.util.find_spec(module) is not None, f"{module} is not installed (pip install '.[all]')"
        )
    _need(shutil.which("git") is not None, "git is not on PATH")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, work / NOTEBOOK)
    for name in (".gitattributes", ".gitignore"):  # the filter, and .ipynb_checkpoints/ ignored
        shutil.copy(REPO / name, work / name)
    git = ["git", "-C", str(work), "-c", "user.name=test", "-c", "user.email=test@localhost"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run(
        ["bash", str(REPO / "scripts" / "notebook_filter.sh"), sys.executable], cwd=work, check=True
    )
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "notebook 05"], check=True)

    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no news or update checks: nothing leaves 127.0.0.1
    (settings / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}'
    )
    config = tmp_path / "jupyter_config"  # as bootstrap.sh links it into the venv: save as git stores
    config.mkdir()
    (config / "jupyter_server_config.py").symlink_to(REPO / "scripts" / "jupyter_server_config.py")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel draws inline
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        ADVEXP_SMOKE="1",
        ADVEXP_RESULTS_DIR=str(tmp_path / "results"),
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"),
    )
    port, token = _free_port(), secrets.token_hex(16)
    server = _Process(
        "jupyter lab",
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.extension_manager=readonly",  # no PyPI look-ups
            "--allow-root",  # CI runs as root
            "--LanguageServerManager.autodetect=False",  # no language-server scan
            "--ServerApp.terminals_enabled=False",
            f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        tmp_path / "jupyter.log",
        cwd=work,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up():
            assert server.alive(), f"jupyter lab exited:\n{server.tail()}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(up, "JupyterLab to answer /api/status", 60)
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}", work, server
    finally:
        kernels = server.family()[1:]  # the kernel(s) the server started, stopped by PID below
        try:  # shut the kernels down the way JupyterLab does; the PIDs are stopped below in any case
            req = urllib.request.Request(f"{base}/api/kernels?token={token}")
            with urllib.request.urlopen(req, timeout=5) as r:
                for k in json.load(r):
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE"
                        ),
                        timeout=10,
                    )
        except OSError:
            pass
        print(f"jupyter lab log (tail):\n{server.tail()}")
        print("stopped jupyter lab and its kernel, PIDs", server.stop(also=kernels))


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium with a DevTools port; yields a :class:`_DevTools` attached to its page."""
    _need(CHROMIUM is not None, MISSING)  # the binary started below: one lookup decides
    dport = _free_port()
    chromium = _Process(
        "chromium",
        [
            CHROMIUM,
            *HEADLESS,
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--remote-debugging-port={dport}",
            "--window-size=1400,1000",
            "about:blank",
        ],
        tmp_path / "chromium.log",
    )
    try:

        def page():
            assert chromium.alive(), f"chromium exited:\n{chromium.tail()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list", timeout=2) as r:
                    return next(
                        (t["webSocketDebuggerUrl"] for t in json.load(r) if t["type"] == "page"), None
                    )
            except OSError:
                return None

        devtools = _DevTools(_wait(page, "Chromium's DevTools page target", 30))
        yield devtools
        devtools.ws.close()
    finally:
        print("stopped chromium, PIDs", chromium.stop())


def test_explorer_runs_and_redraws_in_jupyterlab(browser, lab):  # Chromium starts first, in parallel
    url, work, server = lab
    t0 = time.perf_counter()
    for domain in ("Runtime", "Log", "Page"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=url)
    js = _JS % {"name": json.dumps(NOTEBOOK), "slider": json.dumps(SLIDER)}

    def page(expression):
        return browser.js(js + expression)

    _wait(lambda: page("!!nb()"), f"JupyterLab to open {NOTEBOOK}", 90)
    _wait(lambda: page("kernelStatus() === 'idle'"), "the kernel to start", 90)
    seconds = {"open": time.perf_counter() - t0}

    page("window.jupyterapp.commands.execute('notebook:run-all-cells'), true")  # not awaited: polled below

    def finished():
        assert server.alive(), f"jupyter lab exited:\n{server.tail()}"
        return page(
            "codeCells().every(c => c.model.executionCount !== null) && kernelStatus() === 'idle' "
            "&& !!figure() && !!slider()"
        )

    _wait(finished, "Run All to finish and the explorer to show its figure", 180)
    seconds["run all"] = time.perf_counter() - t0 - sum(seconds.values())
    outputs = page("codeCells().map(c => c.model.outputs.toJSON())")
    errors = [o for cell in outputs for o in cell if o["output_type"] == "error"]
    assert not errors, f"cell errors: {[(e['ename'], e['evalue']) for e in errors]}"
    stderr = [o["text"] for cell in outputs for o in cell if o.get("name") == "stderr"]
    assert not any("Traceback" in t for t in stderr), f"a cell printed a traceback: {stderr}"

    before = page("figure()")
    assert before.startswith("data:image/png;base64,") and len(base64.b64decode(before[22:])) > 1000
    handle = "slider().querySelector('[role=slider]')"
    value, top = page(f"[+{handle}.getAttribute('aria-valuenow'), +{handle}.getAttribute('aria-valuemax')]")
    key, code = ("ArrowRight", 39) if value < top else ("ArrowLeft", 37)
    page(f"{handle}.focus()")
    for kind in ("keyDown", "keyUp"):  # a real key press, as a user who tabbed to the slider makes
        browser.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)
    _wait(
        lambda: page(f"+{handle}.getAttribute('aria-valuenow')") != value,
        f"the {SLIDER!r} slider to move",
        20,
    )
    moved = page(f"+{handle}.getAttribute('aria-valuenow')")
    _wait(lambda: page("figure()") not in (None, before), "a new figure after the slider moved", 90)
    seconds["slider"] = time.perf_counter() - t0 - sum(seconds.values())
    assert page("kernelStatus()") in ("idle", "busy"), "the kernel died"

    # what autosave would do: JupyterLab writes the notebook, and git still sees the notebook it stores
    assert any(outputs), "no cell has outputs: saving them would test nothing"
    mtime = (work / NOTEBOOK).stat().st_mtime_ns
    page("nb().context.save()")  # what docmanager:save does for the focused notebook, without needing focus
    _wait(lambda: page("!nb().context.model.dirty"), "JupyterLab to save the notebook", 30)
    assert (work / NOTEBOOK).stat().st_mtime_ns != mtime, "JupyterLab did not write the notebook"
    status = subprocess.run(["git", "-C", str(work), "status", "--porcelain"], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout == "", (
        f"git status after running and saving:\n{status.stdout}"
    )

    browser.drain()
    problems = browser.errors()
    assert not problems, "browser console errors:\n" + "\n".join(problems)
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, f"the server or kernel logged a traceback:\n{server.tail(80)}"
    seconds["save and checks"] = time.perf_counter() - t0 - sum(seconds.values())
    print(
        f"live JupyterLab test: slider {value} -> {moved}; seconds",
        {k: round(v, 1) for k, v in seconds.items()},
    )
