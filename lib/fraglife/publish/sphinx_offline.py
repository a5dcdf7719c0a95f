"""A Sphinx extension for the HTML book: keep every page free of CDN loads.

Jupyter Book 1.x always loads ``sphinx_thebe``, which writes
a ``THEBE_JS_URL`` constant pointing at a public CDN into every page, adds a
loader script and a per-page binder configuration, even with launch buttons off. The book has no live
kernel, so this extension drops thebe's scripts, stylesheet and configuration from each page,
and refuses (as a build error) any remaining script or stylesheet that would
come from another host. Listed in ``data/book/_config.yml`` under
``sphinx.extra_extensions``.
"""

from __future__ import annotations

import re

from sphinx.errors import ExtensionError

_EXTERNAL = re.compile(r"^(https?:)?//", re.I)


def _filename(asset) -> str:
    return str(getattr(asset, "filename", asset) or "")


def _body(asset) -> str:
    attrs = getattr(asset, "attributes", None) or {}
    return str(attrs.get("body", ""))


def _is_thebe(asset) -> bool:
    return "thebe" in _filename(asset).lower() or "THEBE_JS_URL" in _body(asset)


def _strip(app, pagename, templatename, context, doctree) -> None:
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if not assets:
            continue
        kept = [a for a in assets if not _is_thebe(a)]
        external = [_filename(a) for a in kept if _EXTERNAL.match(_filename(a))]
        if external:
            raise ExtensionError(f"{pagename}: would load {', '.join(external)} from the network; "
                                 "vendor it or turn it off (fraglife.publish.sphinx_offline)")
        context[key] = kept


def _strip_thebe_nodes(app, doctree, docname) -> None:
    """sphinx_thebe's per-page config (a binder repo, a kernel name): meaningless without a kernel."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "x-thebe-config" in text or text.strip().startswith("<script>kernelName"):
            node.parent.remove(node)


def setup(app):
    # After sphinx_thebe and the themes have added their assets and nodes.
    app.connect("doctree-resolved", _strip_thebe_nodes, priority=900)
    app.connect("html-page-context", _strip, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
