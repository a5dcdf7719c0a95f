"""Does a published page work with the network off? The static audit every build runs.

:func:`audit` reads the HTML: every asset a page loads (scripts, stylesheets,
images, fonts, frames, CSS ``url()``/``@import``, module imports, URL strings
in inline scripts) must be a local file that exists, never ``http(s)://`` or
``//host``; every link to another local page must reach an existing file.
Links the reader follows to the web (``<a href="https://lore.kernel.org/...">``)
are fine. (Opening the pages in a browser with the network blocked is the
tests' job: tests/chromium.py.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterable
from urllib.parse import unquote, urlsplit

EXTERNAL = re.compile(r"^\s*(https?:)?//", re.I)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""", re.I)
_CSS_IMPORT = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'")\s;]+)""", re.I)
_JS_URL = re.compile(r"""(['"`])((?:https?:)?//[^'"`\s]+)\1""", re.I)
_JS_IMPORT = re.compile(r"""\bimport\s*(?:[\w{}\s,*]+from\s*)?\(?\s*['"]([^'"]+)['"]""")

# Attributes that make the browser fetch something, by tag ("*" = any tag).
_ASSET_ATTRS = {
    "script": ("src",), "img": ("src", "srcset"), "iframe": ("src",), "embed": ("src",),
    "source": ("src", "srcset"), "audio": ("src",), "video": ("src", "poster"), "track": ("src",),
    "object": ("data",), "input": ("src",), "image": ("href", "xlink:href"), "use": ("href", "xlink:href"),
    "feimage": ("href", "xlink:href"),
}
# <link rel=...> that fetch; others (canonical, alternate, next, prev...) are just metadata.
_FETCHING_LINKS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "manifest",
                   "apple-touch-icon", "mask-icon"}


@dataclass
class Refs:
    assets: list[str] = field(default_factory=list)  # things the page loads
    links: list[str] = field(default_factory=list)  # <a href> the reader may follow
    ids: set[str] = field(default_factory=set)  # anchors the page defines
    stylesheets: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs = Refs()
        self._in = None  # "script" | "style"
        self._script_type = ""
        self._buf: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k.lower(): (v or "") for k, v in attrs}
        tag = tag.lower()
        if "id" in a:
            self.refs.ids.add(a["id"])
        if "name" in a and tag == "a":
            self.refs.ids.add(a["name"])
        if tag == "a" and "href" in a:
            self.refs.links.append(a["href"])
        if tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if rels & _FETCHING_LINKS:
                self.refs.assets.append(a["href"])
                if "stylesheet" in rels:
                    self.refs.stylesheets.append(a["href"])
        for attr in _ASSET_ATTRS.get(tag, ()):
            v = a.get(attr)
            if v:
                if attr == "srcset":
                    self.refs.assets += [part.strip().split()[0] for part in v.split(",") if part.strip()]
                else:
                    self.refs.assets.append(v)
        if "style" in a:
            self._css(a["style"])
        if tag in ("script", "style"):
            self._in, self._script_type, self._buf = tag, a.get("type", "").lower(), []

    def handle_endtag(self, tag):
        if self._in and tag.lower() == self._in:
            text = "".join(self._buf)
            if self._in == "style":
                self._css(text)
            elif self._script_type not in ("application/json", "application/ld+json", "text/x-mathjax-config",
                                           "application/vnd.jupyter.widget-state+json",
                                           "application/vnd.jupyter.widget-view+json"):
                self.refs.assets += [m.group(2) for m in _JS_URL.finditer(text)]
                self.refs.assets += [m.group(1) for m in _JS_IMPORT.finditer(text) if EXTERNAL.match(m.group(1))]
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._buf.append(data)

    def _css(self, text: str) -> None:
        self.refs.assets += [m.group(2) for m in _CSS_URL.finditer(text)]
        self.refs.assets += [m.group(1) for m in _CSS_IMPORT.finditer(text)]


def references(html_text: str) -> Refs:
    """Assets, links and anchors of one HTML document."""
    c = _Collector()
    c.feed(html_text)
    c.close()
    return c.refs


def _local_target(page: Path, ref: str) -> tuple[Path | None, str]:
    """The file a relative reference names (None for same-page or non-file schemes), and its fragment."""
    ref = ref.strip()
    if not ref or ref.startswith("#"):
        return None, ref[1:]
    parts = urlsplit(ref)
    if parts.scheme and parts.scheme != "file":
        return None, ""
    path = unquote(parts.path)
    if not path:
        return None, parts.fragment
    target = Path(path) if parts.scheme == "file" or path.startswith("/") else page.parent / path
    return target, parts.fragment


def _skip_scheme(ref: str) -> bool:
    return bool(re.match(r"^\s*(data|blob|javascript|mailto|about|tel):", ref, re.I))


def audit_css(css_file: Path, seen: set[Path] | None = None) -> list[str]:
    """External or missing url()/@import targets of a local stylesheet (followed through @import)."""
    seen = seen if seen is not None else set()
    css_file = css_file.resolve()
    if css_file in seen or not css_file.exists():
        return []
    seen.add(css_file)
    text = css_file.read_text(errors="replace")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments name URLs too
    problems = []
    imports = [m.group(1) for m in _CSS_IMPORT.finditer(text)]
    for ref in [m.group(2) for m in _CSS_URL.finditer(text)] + imports:
        problem, target = _asset(css_file, str(css_file), ref, "")
        if problem:
            problems.append(problem)
        elif target is not None and ref in imports:
            problems += audit_css(target, seen)
    return problems


def _asset(where: Path, label: str, ref: str, what: str) -> tuple[str | None, Path | None]:
    """What is wrong with a reference a page or stylesheet loads (None if fine), and its local file."""
    if _skip_scheme(ref):
        return None, None
    if EXTERNAL.match(ref):
        return f"{label}: loads {ref} from the network", None
    target, _ = _local_target(where, ref)
    if target is not None and not target.exists():
        return f"{label}: {what}{ref} does not exist", None
    return None, target


def audit(pages: Iterable[Path | str]) -> list[str]:
    """Everything that would stop ``pages`` from working offline; empty when all is well."""
    problems: list[str] = []
    seen_css: set[Path] = set()
    for page in map(Path, pages):
        refs = references(page.read_text(encoding="utf-8", errors="replace"))
        for ref in refs.assets:
            problem, _ = _asset(page, page.name, ref, "asset ")
            if problem:
                problems.append(problem)
        for ref in refs.stylesheets:
            target, _ = _local_target(page, ref)
            if target is not None and not EXTERNAL.match(ref):
                problems += audit_css(target, seen_css)
        for ref in refs.links:
            if _skip_scheme(ref) or EXTERNAL.match(ref):
                continue
            target, fragment = _local_target(page, ref)
            if target is None:
                if fragment and fragment not in refs.ids:
                    problems.append(f"{page.name}: link {ref} names no anchor on the page")
                continue
            if not target.exists():
                problems.append(f"{page.name}: link {ref} leads nowhere")
            elif fragment and target.suffix == ".html":
                ids = references(target.read_text(encoding="utf-8", errors="replace")).ids
                if fragment not in ids:
                    problems.append(f"{page.name}: link {ref} names no anchor in {target.name}")
    return problems
