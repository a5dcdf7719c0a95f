"""A live JupyterLab, driven in headless Chromium as a reader would use it.

Run by ``make test-lab`` (and ``.ci/run``), which hands over the command
``make lab`` runs (FRAGLIFE_LAB_COMMAND). The test starts that command on a
free port with a token and no browser, with its own (empty) user settings, so
what it sees is what the environment's settings overrides give every reader:

* the first screen is the overview, with no "get notified about official
  Jupyter news?" prompt;
* chapter 01 runs, every cell, with no error output;
* its control panel answers: a dropdown and a slider changed, the chart and the
  table below them change.

The browser is offline except for the server's own origin. Autosave is off
in the test's user settings and the source notebooks are checked unchanged at
the end: running a chapter must not write outputs into book/. Screenshots go
to build/screenshots/lab-*.png. Every wait is on the page's state, with
generous limits; the server and its kernels are stopped on every path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from fraglife import chapters
from fraglife.paths import ROOT, build_dir
from fraglife.publish import browser

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not os.environ.get("FRAGLIFE_CHECK_LAB"),
                       reason="drives a live JupyterLab: run `make test-lab`"),
]

CHAPTER = "01_refcount_removal"
NEWS = "official Jupyter news"
START_TIMEOUT = 120  # seconds for the server to answer
RUN_TIMEOUT = 600  # seconds for every cell of the chapter (a cold numba cache compiles first)
STEP_TIMEOUT = 120  # seconds for the panel to redraw after a change


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digests() -> dict[str, str]:
    return {c.id: hashlib.sha256(c.notebook.read_bytes()).hexdigest() for c in chapters.CHAPTERS if c.notebook.exists()}


def _api(base: str, token: str, path: str, method: str = "GET"):
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


def _stop(proc: subprocess.Popen, base: str, token: str) -> None:
    """Shut the kernels down through the API, then the server; kill what is left."""
    try:
        for k in _api(base, token, "/api/kernels") or []:
            _api(base, token, f"/api/kernels/{k['id']}", method="DELETE")
    except Exception:  # the server may be gone already; the signals below still apply
        pass
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab():
    command = os.environ.get("FRAGLIFE_LAB_COMMAND")
    assert command, "FRAGLIFE_LAB_COMMAND (the command `make lab` runs) is not set: run `make test-lab`"
    reason = browser.missing()
    if reason:
        pytest.fail(reason)
    port, token = _free_port(), os.urandom(16).hex()
    base = f"http://127.0.0.1:{port}"
    home = tempfile.mkdtemp(prefix="fl-lab-")
    settings = os.path.join(home, "settings")
    os.makedirs(os.path.join(settings, "@jupyterlab", "docmanager-extension"))
    with open(os.path.join(settings, "@jupyterlab", "docmanager-extension", "plugin.jupyterlab-settings"), "w") as f:
        json.dump({"autosave": False}, f)
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=settings, JUPYTERLAB_WORKSPACES_DIR=os.path.join(home, "ws"),
               JUPYTER_CONFIG_DIR=os.path.join(home, "config"), JUPYTER_RUNTIME_DIR=os.path.join(home, "rt"))
    cmd = shlex.split(command) + [f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0", "--no-browser",
                                  f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True"]
    log_path = build_dir("lab") / "jupyterlab.log"
    before = _digests()
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base} within {START_TIMEOUT}s:\n"
                                f"{log_path.read_text()[-3000:]}")
                time.sleep(0.25)
        yield {"base": base, "token": token, "log": log_path}
    finally:
        _stop(proc, base, token)
        log.close()
        shutil.rmtree(home, ignore_errors=True)
        assert _digests() == before, "running chapters in JupyterLab must not write to book/"


# JavaScript run in the page; `window.jupyterapp` is there because of --LabApp.expose_app_in_browser.
CURRENT = "window.jupyterapp.shell.currentWidget"
KERNEL_IDLE = f"""() => {{ const w = {CURRENT};
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.status === 'idle'; }}"""
# Every code cell ran, or one failed (run-all stops there; the error check below says which).
ALL_RAN = f"""() => {{ const w = {CURRENT};
    const code = [...w.content.model.cells].filter(c => c.type === 'code');
    const failed = code.some(c => [...Array(c.outputs.length).keys()]
        .some(j => c.outputs.get(j).toJSON().output_type === 'error'));
    return code.length > 0 && (failed || code.every(c => c.executionCount !== null))
        && w.sessionContext.session.kernel.status === 'idle'; }}"""
ERRORS = f"""() => {{ const out = [];
    [...{CURRENT}.content.model.cells].forEach((c, i) => {{
      if (c.type !== 'code') return;
      for (let j = 0; j < c.outputs.length; j++) {{
        const o = c.outputs.get(j).toJSON();
        if (o.output_type === 'error') out.push(`cell ${{i}}: ${{o.ename}}: ${{o.evalue}}`);
      }} }});
    return out; }}"""
# The panel: the widget box holding the dropdown; its Output widget holds the chart and the table.
PANEL = ".jp-OutputArea-output .widget-vbox:has(> .widget-vbox .widget-dropdown)"
STATE = f"""() => {{ const p = document.querySelector({json.dumps(PANEL)});
    if (!p) return null;
    const out = p.querySelector('.widget-output');
    const chart = out && out.querySelector('img, svg');
    const table = out && out.querySelector('table');
    const error = out && [...out.querySelectorAll('pre')].map(e => e.textContent).join('\\n');
    return {{chart: chart ? (chart.getAttribute('src') || chart.outerHTML) : null,
             table: table ? table.innerText : null, error: error || null}}; }}"""


def _changed(tab, before: dict, timeout: float = STEP_TIMEOUT) -> dict:
    """Wait until the panel shows a new chart and a new table (and the kernel is idle again)."""
    tab.wait_for(f"""(before) => {{ const s = ({STATE})();
        return s && !s.error && s.chart && s.table && s.chart !== before.chart && s.table !== before.table
            && ({KERNEL_IDLE})(); }}""", before, timeout=timeout)
    return tab.evaluate(STATE)


def _decoded(src: str) -> str:
    """The SVG text of a chart, whether inline or a data: URI."""
    import base64
    import urllib.parse

    if src.startswith("data:image/svg+xml;base64,"):
        return base64.b64decode(src.split(",", 1)[1]).decode()
    if src.startswith("data:"):
        return urllib.parse.unquote(src.split(",", 1)[1])
    return src


def test_overview_first_then_chapter_01_runs_and_its_panel_answers(lab):
    shots = build_dir("screenshots")
    with browser.offline_browser(viewport=(1400, 900)) as chromium:
        ws = lab["base"].replace("http:", "ws:")
        tab = chromium.open(f"{lab['base']}/?token={lab['token']}", allow=(lab["base"], ws), timeout=120)
        try:
            # First screen: the overview, and no news prompt.
            tab.wait_for("() => !!window.jupyterapp", timeout=120)
            tab.evaluate("() => { window.jupyterapp.restored.then(() => { window.__restored = true; }); }")
            tab.wait_for("() => window.__restored === true", timeout=120)
            tab.wait_for(f"""() => {{ const w = {CURRENT}; if (!w || !w.context || w.context.path !== '00_overview.ipynb') return false;
                const h = w.node.querySelector('.jp-RenderedMarkdown h1');
                return w.context.isReady && !!h && h.textContent.includes('Overview'); }}""", timeout=120)
            tab.screenshot(shots / "lab-first-screen.png")
            assert NEWS not in tab.page.inner_text("body"), "JupyterLab asks about Jupyter news on its first screen"

            # Chapter 01, every cell.
            tab.evaluate(f"() => {{ window.jupyterapp.commands.execute('docmanager:open', {{path: '{CHAPTER}.ipynb'}}); }}")
            tab.wait_for(f"() => {{ const w = {CURRENT}; return w && w.context && w.context.path === '{CHAPTER}.ipynb'; }}")
            tab.wait_for(KERNEL_IDLE, timeout=120)
            # Started, not awaited: the wait below is on the cells' state, with its own limit.
            tab.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            tab.wait_for(ALL_RAN, timeout=RUN_TIMEOUT)
            assert tab.evaluate(ERRORS) == [], f"{CHAPTER}: error output in JupyterLab"

            # The control panel: a chart and a table under a dropdown and sliders.
            panel = tab.page.locator(PANEL)
            panel.scroll_into_view_if_needed()
            tab.wait_for(f"() => {{ const s = ({STATE})(); return s && s.chart && s.table; }}", timeout=STEP_TIMEOUT)
            start = tab.evaluate(STATE)
            assert start["error"] is None, start["error"]
            assert "tcp_send" in _decoded(start["chart"])
            tab.screenshot(shots / "lab-01-panel.png")

            # A dropdown: another workload.
            panel.locator(".widget-dropdown select").select_option("tcp_gso")
            gso = _changed(tab, start)
            assert "tcp_gso" in _decoded(gso["chart"])
            tab.screenshot(shots / "lab-01-panel-dropdown.png")

            # A slider: the folio size one step up (keyboard on the slider's handle, as a reader could).
            slider = panel.locator(".widget-slider", has=tab.page.locator(".widget-label", has_text="folio_pages"))
            readout = slider.locator(".widget-readout")
            assert readout.inner_text().strip() == "1"
            slider.locator(".noUi-handle").focus()
            tab.page.keyboard.press("ArrowRight")
            bigger = _changed(tab, gso)
            assert readout.inner_text().strip() == "4"
            tab.screenshot(shots / "lab-01-panel-slider.png")
            assert bigger["error"] is None

            assert tab.evaluate(ERRORS) == [], f"{CHAPTER}: error output after changing the panel"
            assert NEWS not in tab.page.inner_text("body"), "JupyterLab asked about Jupyter news"
            assert tab.problems() == []
        finally:
            tab.close()
    log = lab["log"].read_text()
    assert "without encryption" not in log, "a kernel warned about unencrypted TCP (make lab runs kernels over IPC)"
