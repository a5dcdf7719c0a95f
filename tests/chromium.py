"""Headless Chromium for the offline tests, driven over the DevTools protocol on a pipe.

:class:`Chromium` opens a page from disk with the network blocked (a dead
proxy and a resolver that resolves nothing) and records, through the DevTools
protocol over ``--remote-debugging-pipe`` (no websocket, no extra package),
every request, every failed load, every exception and console error, and
takes screenshots; :meth:`Visit.problems` turns that into a list of problems.
Test tooling, not library: tests/test_publish.py and tests/test_publish_offline.py
use it.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-default-apps",
    "--disable-extensions", "--mute-audio", "--hide-scrollbars", "--no-default-browser-check",
    "--disable-breakpad", "--disable-domain-reliability", "--metrics-recording-only",
    # The network is blocked: a proxy on a dead port, and no name resolves.
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--allow-file-access-from-files",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4)."""

    def __init__(self, executable: str | None = None, size: tuple[int, int] = (1280, 800)):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise BrowserError("Chromium is not installed (Debian: apt-get install chromium; `make chromium`)")
        self.size = size
        self.profile = tempfile.mkdtemp(prefix="fraglife-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        def _fds():
            import fcntl

            # Move both ends above 10 first: dup2(3, 3) would keep close-on-exec.
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.close(r)
            os.close(w)

        cmd = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
               f"--window-size={size[0]},{size[1]}", "--remote-debugging-pipe", "about:blank"]
        self._log = open(os.path.join(self.profile, "chromium.log"), "wb")
        # os.pipe() fds are not inherited across exec; the dup2'd 3 and 4 are. close_fds
        # would run after preexec_fn and close 3 and 4 again, hence False.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     preexec_fn=_fds, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        self._next = 0
        self._buf = b""
        self.events: list[dict] = []

    # -- protocol ------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        return self._next

    def _read(self, timeout: float) -> dict | None:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._from_child], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe" + self._tail())
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no reply to {method} within {timeout}s" + self._tail())
            msg = self._read(left)
            if msg is None:
                continue
            if msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self._read(left)
            if msg and "method" in msg:
                self.events.append(msg)

    def _tail(self) -> str:
        try:
            self._log.flush()
            text = Path(self.profile, "chromium.log").read_text(errors="replace").strip().splitlines()[-5:]
            return ("; chromium said: " + " | ".join(text)) if text else ""
        except OSError:
            return ""

    # -- pages ---------------------------------------------------------------------------
    def visit(self, url: str, settle: float = 2.5, load_timeout: float = 30) -> "Visit":
        """Open ``url`` in a fresh tab, wait for load plus ``settle`` seconds; record what happened."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.size[0], "height": self.size[1], "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        start = len(self.events)
        self.call("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + load_timeout
        while not any(e["method"] == "Page.loadEventFired" and e.get("sessionId") == session
                      for e in self.events[start:]):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading within {load_timeout}s")
            self.pump(0.2)
        self.pump(settle)
        return Visit(self, url, session, target)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self._send("Browser.close")
                    self.proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Visit:
    browser: Chromium
    url: str
    session: str
    target: str

    @property
    def events(self) -> list[dict]:
        """Everything this tab reported so far."""
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    def _of(self, method: str) -> list[dict]:
        return [e["params"] for e in self.events if e["method"] == method]

    @property
    def requests(self) -> list[str]:
        return [p["request"]["url"] for p in self._of("Network.requestWillBeSent")]

    @property
    def failed(self) -> list[str]:
        by_id = {p["requestId"]: p["request"]["url"] for p in self._of("Network.requestWillBeSent")}
        return [f"{by_id.get(p['requestId'], p['requestId'])}: {p.get('errorText', '')}"
                for p in self._of("Network.loadingFailed") if not p.get("canceled")]

    @property
    def http_errors(self) -> list[str]:
        return [f"{p['response']['url']}: HTTP {p['response']['status']}" for p in self._of("Network.responseReceived")
                if p["response"].get("status", 200) >= 400]

    @property
    def exceptions(self) -> list[str]:
        out = []
        for p in self._of("Runtime.exceptionThrown"):
            d = p.get("exceptionDetails", {})
            out.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        return out

    @property
    def console_errors(self) -> list[str]:
        out = [f"{p['entry'].get('source')}: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip()
               for p in self._of("Log.entryAdded") if p["entry"].get("level") == "error"]
        out += [" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                for p in self._of("Runtime.consoleAPICalled") if p.get("type") == "error"]
        return out

    def evaluate(self, expression: str) -> Any:
        res = self.browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                     "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in res:
            raise BrowserError(f"{expression!r}: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Poll a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"{self.url}: {expression!r} still false after {timeout}s")
            self.browser.pump(0.2)

    def goto(self, fragment: str, settle: float = 0.8) -> None:
        """Change the page's #fragment (a reveal.js slide: '#/3') and let it redraw."""
        self.evaluate(f"location.hash = {json.dumps(fragment)}")
        self.browser.pump(settle)

    def screenshot(self, path: Path | str, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.browser.call("Page.captureScreenshot", params, session=self.session)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """External requests, failed or erroring loads, exceptions and console errors."""
        out = [f"requested from the network: {u}" for u in self.requests
               if not u.startswith(("file:", "data:", "blob:", "about:", "chrome:", "devtools:"))]
        out += [f"failed to load: {f}" for f in self.failed]
        out += [f"HTTP error: {h}" for h in self.http_errors]
        out += [f"exception: {x}" for x in self.exceptions]
        out += [f"console error: {c}" for c in self.console_errors]
        return out

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})


def file_url(path: Path | str) -> str:
    return Path(path).resolve().as_uri()
