"""The JavaScript and fonts decks and pages carry, copied from node_modules/ (package.json).

``npm ci`` (``make vendor``) installs them into the checkout's node_modules/;
a build copies only what the templates load into its output folder, so the
output opens from disk with the network off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from ..paths import ROOT
from .notebooks import PublishError

# The checkout's node_modules/ (or FRAGLIFE_NODE_MODULES, for an installed package).
NODE_MODULES = Path(os.environ.get("FRAGLIFE_NODE_MODULES", ROOT / "node_modules"))
VENDOR_DIR = "_vendor"  # beside the decks; the config file's URLs are relative to it

# What each deck or page may load, by npm package: files and folders copied
# from node_modules/<package>/ to <out>/_vendor/<package>/. Only what the
# templates use, so a deck folder stays small (~8 MB).
SLIDE_ASSETS: dict[str, tuple[str, ...]] = {
    "reveal.js": ("LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/reset.css",
                  "dist/theme/white.css", "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js"),
    "requirejs": ("require.js",),
    "jquery": ("LICENSE.txt", "dist/jquery.min.js"),
    "mathjax": ("LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "config/local",
                "extensions", "jax/input/TeX", "jax/element", "jax/output/CommonHTML",
                "fonts/HTML-CSS/TeX/woff", "fonts/HTML-CSS/TeX/otf"),
    "font-awesome": ("README.md", "css/font-awesome.min.css", "fonts"),
}
BOOK_ASSETS = {"mathjax": SLIDE_ASSETS["mathjax"]}


def _package_version(package: str) -> str:
    meta = NODE_MODULES / package / "package.json"
    if not meta.exists():
        raise PublishError(f"node_modules/{package} is missing: run `make vendor` (npm ci) first")
    return json.loads(meta.read_text())["version"]


def template_reveal_major() -> int:
    """The reveal.js major version nbconvert's reveal template is written for."""
    from nbconvert.exporters.slides import SlidesExporter

    url = SlidesExporter().reveal_url_prefix  # the CDN default names the version
    m = re.search(r"reveal\.js@(\d+)", url)
    if not m:
        raise PublishError(f"cannot tell which reveal.js nbconvert's template expects (default {url!r})")
    return int(m.group(1))


def check_vendor() -> dict[str, str]:
    """Versions of the vendored packages; fails if one is missing or reveal's major differs."""
    versions = {p: _package_version(p) for p in SLIDE_ASSETS}
    want = template_reveal_major()
    have = int(versions["reveal.js"].split(".")[0])
    if have != want:
        raise PublishError(f"reveal.js {versions['reveal.js']} is vendored but nbconvert's template is written for "
                           f"reveal.js {want}.x; pin reveal.js@{want} in package.json")
    return versions


def copy_assets(dest: Path, assets: dict[str, tuple[str, ...]]) -> Path:
    """Copy the listed files from node_modules/ into dest/<package>/ (replacing what was there)."""
    dest = Path(dest)
    for package, parts in assets.items():
        _package_version(package)
        for part in parts:
            src = NODE_MODULES / package / part
            dst = dest / package / part
            if not src.exists():
                raise PublishError(f"node_modules/{package}/{part} is missing; is package.json's {package} the "
                                   "version this code expects? Run `make vendor`.")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
    return dest
