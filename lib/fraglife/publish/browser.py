"""Headless Chromium with the network off: Playwright for Python driving Debian's chromium.

``fraglife talk`` prints its PDF handout and measures its slides with it; the
browser tests (tests/test_publish*.py, tests/test_lab.py) open decks, pages and
a live JupyterLab with it. Playwright drives the Chromium the system has
(``make chromium`` installs Debian's package) through ``executable_path``;
Playwright's own browser download (``playwright install``) is never used.

Every request a page makes is routed: ``file:``, ``data:`` and ``blob:`` URLs
(and the origins a caller allows, e.g. a JupyterLab on 127.0.0.1) go through,
anything else is aborted and recorded. :meth:`Tab.problems` lists those
requests, failed loads, HTTP errors, uncaught page errors and console errors.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

LOCAL = ("file:", "data:", "blob:", "about:")
ARGS = (
    "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--disable-breakpad", "--disable-domain-reliability", "--no-default-browser-check",
    "--allow-file-access-from-files",
    # Besides the routing below: no host name resolves but the loopback (for a local JupyterLab).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


class BrowserError(RuntimeError):
    """Chromium or Playwright is missing, or a page did not do what was asked in time."""


def find_chromium() -> str | None:
    """The system's Chromium (FRAGLIFE_CHROMIUM overrides), or None."""
    if os.environ.get("FRAGLIFE_CHROMIUM"):
        return os.environ["FRAGLIFE_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def missing() -> str | None:
    """Why no offline browser can start here (None when one can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (`make setup` installs the [book] extra)"
    if not find_chromium():
        return "Chromium is not installed (`make chromium`: Debian's chromium package)"
    return None


def file_url(path: Path | str) -> str:
    return Path(path).resolve().as_uri()


@dataclass
class Tab:
    """One page in its own browser context, and everything it did."""

    page: Any  # playwright.sync_api.Page
    allow: tuple[str, ...] = ()
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def _local(self, url: str) -> bool:
        return url.startswith(LOCAL) or any(url.startswith(a) for a in self.allow)

    def _route(self, route) -> None:
        url = route.request.url
        if self._local(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _watch(self) -> None:
        p = self.page
        p.on("request", lambda r: self.requests.append(r.url))
        p.on("websocket", lambda ws: self.requests.append(ws.url))
        p.on("requestfailed", lambda r: None if r.url in self.blocked else
             self.failed.append(f"{r.url}: {r.failure or 'failed'}"))
        p.on("response", lambda r: self.http_errors.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None)
        p.on("pageerror", lambda e: self.errors.append(str(e)))
        p.on("console", lambda m: self.console_errors.append(
            f"{m.text} ({m.location.get('url', '')}:{m.location.get('lineNumber', '')})") if m.type == "error" else None)

    def problems(self) -> list[str]:
        """Requests that would leave the machine, failed loads, HTTP errors, page and console errors."""
        out = [f"requested from the network: {u}" for u in self.requests if not self._local(u)]
        out += [f"blocked: {u}" for u in self.blocked if u not in self.requests]
        out += [f"failed to load: {f}" for f in self.failed]
        out += [f"HTTP error: {h}" for h in self.http_errors]
        out += [f"page error: {e}" for e in self.errors]
        out += [f"console error: {c}" for c in self.console_errors]
        return out

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait_for(self, expression: str, arg: Any = None, timeout: float = 30) -> Any:
        """Wait until a JavaScript expression (or function) is truthy; returns its value."""
        return self.page.wait_for_function(expression, arg=arg, timeout=timeout * 1000, polling=100).json_value()

    def screenshot(self, path: Path | str, full_page: bool = False) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.page.context.close()


class OfflineBrowser:
    """One headless Chromium; :meth:`open` gives each page a fresh context."""

    def __init__(self, browser, viewport: tuple[int, int]):
        self.browser = browser
        self.viewport = viewport

    def open(self, url: str, *, allow: tuple[str, ...] = (), viewport: tuple[int, int] | None = None,
             wait_until: str = "load", timeout: float = 60) -> Tab:
        """Open ``url`` with the network off (``allow``: URL prefixes that may load too) and wait for it."""
        w, h = viewport or self.viewport
        context = self.browser.new_context(viewport={"width": w, "height": h}, service_workers="block",
                                           accept_downloads=False)
        context.set_default_timeout(timeout * 1000)
        tab = Tab(context.new_page(), tuple(allow))
        context.route("**/*", tab._route)
        tab._watch()
        tab.page.goto(url, wait_until=wait_until, timeout=timeout * 1000)
        return tab


_RUNNING: list = []  # the browser of the outermost offline_browser() in use (Playwright's sync API nests not)


@contextmanager
def offline_browser(viewport: tuple[int, int] = (1280, 800)) -> Iterator[OfflineBrowser]:
    """Start headless Chromium under Playwright; close it on the way out, whatever happened.

    Inside another ``offline_browser()`` (a test holding one while it builds the
    talk), the running browser is shared.
    """
    if _RUNNING:
        yield OfflineBrowser(_RUNNING[-1], viewport)
        return
    reason = missing()
    if reason:
        raise BrowserError(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=list(ARGS))
        _RUNNING.append(browser)
        try:
            yield OfflineBrowser(browser, viewport)
        finally:
            _RUNNING.pop()
            browser.close()
