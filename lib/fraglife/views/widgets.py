"""Control panels that stay readable outside JupyterLab.

A chapter explores a model with a few controls (chapter 01)::

    widgets.panel(view.controls(widgets.spec_of(P), P),
                  lambda **c: view.panel(ch.panel_data(P, **c), c["workload"], ch.POLICY_ORDER),
                  title="Refs per MiB by policy")

``view.controls`` builds its controls with :func:`controls`, which takes each
control's range from the chapter's parameter spec (``Param.lo/hi/choices``; the
spec the parameters ``P`` were validated by, :func:`spec_of`), so a slider can
never offer a value the chapter would refuse.

As the last expression of a cell, the panel shows itself. Its one output
carries two representations of the same thing:

* the live ipywidgets box (controls above, the rendering below, redrawn when
  a control changes), which JupyterLab shows while the kernel runs;
* a static rendering of the state at the controls' initial values (the
  chart or table ``render`` returned, as inline HTML/SVG) followed by the
  note "Interactive in JupyterLab; this is the state at the default
  parameters (...)".

The exports (``fraglife slides``, ``fraglife book``) drop the live view and
its widget state, so decks and HTML show the static rendering and need no
widget JavaScript. Nothing here needs a browser: tests set ``.value`` on a
control and read :attr:`Panel.outputs`.

``render`` takes the controls' values as keyword arguments and returns
something IPython can display (an altair chart, a DataFrame, HTML...), or a
list/tuple of such things, shown one after the other. Keep the logic in the
library: ``render`` should call a model and a view, not compute.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any, Callable, Mapping

import ipywidgets as W

from ..params import Param, ParamError, ParamSpec
from .plots import CHART_SPECS

NOTE = "Interactive in JupyterLab; this is the state at the default parameters"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.S)


def _format(obj: Any) -> tuple[dict, dict]:
    """IPython's own mime bundle for ``obj`` (the same one the live output shows)."""
    from IPython.core.interactiveshell import InteractiveShell

    data, metadata = InteractiveShell.instance().display_formatter.format(obj)
    return data, metadata


def bundle_to_html(data: Mapping[str, Any]) -> str:
    """One mime bundle as an HTML fragment that needs no script and no network.

    Vector first (inline SVG), then HTML, then raster images as data URIs,
    then plain text. Anything else is dropped.
    """
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        svg = "".join(svg) if isinstance(svg, list) else svg
        return _XML_PROLOG.sub("", svg)
    if "text/html" in data:
        h = data["text/html"]
        return "".join(h) if isinstance(h, list) else h
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            b64 = data[mime]
            if isinstance(b64, bytes):
                b64 = base64.b64encode(b64).decode()
            return f'<img src="data:{mime};base64,{b64}" style="max-width:100%"/>'
    if "text/plain" in data:
        return f"<pre>{html.escape(str(data['text/plain']))}</pre>"
    return ""


def _items(obj: Any) -> list[Any]:
    if obj is None:
        return []
    if isinstance(obj, (list, tuple)):
        return [o for o in obj if o is not None]
    return [obj]


def _show_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class Panel:
    """Controls, a render function, and the output they drive.

    Attributes
    ----------
    controls: the ipywidgets, by parameter name, in display order.
    output: the ``ipywidgets.Output`` the renderings go to.
    box: the whole live panel (what JupyterLab shows).
    defaults: the values the controls had when the panel was made; the static
        rendering shows this state.
    current: what ``render`` returned last.
    renders: how many times ``render`` ran.
    error: the message of the last failed re-render, or None.
    """

    def __init__(
        self,
        controls: Mapping[str, W.Widget],
        render: Callable[..., Any],
        *,
        title: str | None = None,
        note: str = NOTE,
        continuous: bool = False,
    ):
        if not isinstance(controls, Mapping) or not controls:
            raise TypeError("panel: controls must be a non-empty dict of {parameter name: ipywidget}")
        for name, w in controls.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"panel: control name {name!r} is not a valid keyword argument name")
            if not isinstance(w, W.Widget) or not w.has_trait("value"):
                raise TypeError(f"panel: control {name!r} must be an ipywidget with a value, got {type(w).__name__}")
        if not callable(render):
            raise TypeError(f"panel: render must be callable, got {type(render).__name__}")

        self.controls: dict[str, W.Widget] = dict(controls)
        self.render = render
        self.title = title
        self.note = note
        self.renders = 0
        self.current: Any = None
        self.error: str | None = None

        for name, w in self.controls.items():
            if not getattr(w, "description", None) and w.has_trait("description"):
                w.description = name
            if w.has_trait("continuous_update") and not continuous:
                w.continuous_update = False
            if w.has_trait("style") and hasattr(w.style, "description_width"):
                w.style.description_width = "initial"

        self.output = W.Output()
        header = [W.HTML(f"<b>{html.escape(title)}</b>")] if title else []
        self.box = W.VBox(header + [W.VBox(list(self.controls.values())), self.output])
        self.defaults = self.values
        # The first rendering is at the defaults; an error here stops the chapter
        # (papermill reports it), unlike an error while someone plays with a control.
        self._draw(self.defaults)
        self.static_html = self._static_html()
        for w in self.controls.values():
            w.observe(self._changed, names="value")

    # -- state -------------------------------------------------------------------------
    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: w.value for name, w in self.controls.items()}

    @property
    def outputs(self) -> tuple[dict, ...]:
        """What the live output currently shows, as nbformat outputs."""
        return self.output.outputs

    def set(self, **values: Any) -> "Panel":
        """Set several controls (each change re-renders, as in the browser)."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"panel: no control named {', '.join(sorted(unknown))}; have {', '.join(self.controls)}")
        for name, v in values.items():
            self.controls[name].value = v
        return self

    # -- drawing -----------------------------------------------------------------------
    def _draw(self, values: Mapping[str, Any]) -> None:
        result = self.render(**values)
        self.current = result
        self.renders += 1
        self.error = None
        self.output.outputs = ()
        for item in _items(result):
            self.output.append_display_data(item)

    def _changed(self, _change: Any = None) -> None:
        try:
            self._draw(self.values)
        except Exception as e:  # show, don't kill the kernel's event loop
            self.error = f"{type(e).__name__}: {e}"
            self.output.outputs = (
                {"output_type": "display_data", "metadata": {},
                 "data": {"text/plain": self.error,
                          "text/html": f'<pre style="color:#b00">{html.escape(self.error)}</pre>'}},
            )

    def refresh(self) -> None:
        """Re-render at the current values."""
        self._changed()

    def _static_html(self) -> str:
        bundles = [_format(item) for item in _items(self.current)]
        parts = [bundle_to_html(data) for data, _ in bundles]
        # The charts' specs travel with the static rendering (fraglife.views.plots.CHART_SPECS).
        self.chart_specs = [s for _, meta in bundles for s in (meta or {}).get(CHART_SPECS, [])]
        state = ", ".join(f"{k}={_show_value(v)}" for k, v in self.defaults.items())
        title = f'<p style="font-weight:bold;margin:0 0 0.3em 0">{html.escape(self.title)}</p>' if self.title else ""
        note = (f'<p class="fraglife-panel-note" style="font-size:0.85em;color:#555;font-style:italic;'
                f'margin:0.3em 0 0 0">{html.escape(self.note)} ({html.escape(state)}).</p>')
        body = "".join(f'<div class="fraglife-panel-item">{p}</div>' for p in parts)
        return f'<div class="fraglife-panel">{title}{body}{note}</div>'

    @property
    def static_text(self) -> str:
        state = ", ".join(f"{k}={_show_value(v)}" for k, v in self.defaults.items())
        return f"{self.note} ({state})."

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, include=None, exclude=None):
        data = dict(self.box._repr_mimebundle_())
        data["text/plain"] = self.static_text
        data["text/html"] = self.static_html
        return (data, {CHART_SPECS: self.chart_specs}) if self.chart_specs else data

    def __repr__(self) -> str:
        return f"<fraglife panel {', '.join(self.controls)}: {self.static_text}>"


def panel(
    controls: Mapping[str, W.Widget],
    render: Callable[..., Any],
    *,
    title: str | None = None,
    note: str = NOTE,
    continuous: bool = False,
) -> Panel:
    """A control panel: live in JupyterLab, a static rendering everywhere else.

    ``controls`` maps ``render``'s keyword arguments to ipywidgets; ``render``
    returns what to show for those values. Make the call the last expression
    of a cell (or ``display()`` the result). Sliders update when released,
    unless ``continuous=True``.
    """
    return Panel(controls, render, title=title, note=note, continuous=continuous)


def strip_live(nb: Any) -> int:
    """Drop live widget views and saved widget state from a notebook (in place).

    What is left of a panel is its static rendering. Returns how many widget
    views were dropped. Used by the exports; safe on any notebook.
    """
    dropped = 0
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_MIME in data:
                dropped += 1
                data.pop(WIDGET_MIME)
                # A bare widget has no static form (its repr is noise): drop it.
                if not set(data) - {"text/plain"}:
                    continue
            kept.append(out)
        cell["outputs"] = kept
    return dropped


# -- controls from a chapter's parameter spec ------------------------------------------------
def control(param: Param, value: Any, *, options: Any = None, lo: float | None = None, hi: float | None = None,
            **widget: Any) -> W.Widget:
    """An ipywidget for one chapter parameter, its range taken from the parameter.

    Choices give a dropdown; ``options`` (each an allowed value) a selection
    slider; numbers a slider over ``[param.lo, param.hi]``, or the narrower
    ``[lo, hi]`` if given (checked against the parameter). ``value`` starts the
    control (clamped into its range, or the nearest option). Other keyword
    arguments go to the widget (``step``, ``readout_format``...).
    """
    if param.choices is not None:
        return W.Dropdown(options=list(param.choices), value=value, **widget)
    if param.kind is bool:
        return W.Checkbox(value=bool(value), **widget)
    if options is not None:
        options = [param.check(o) for o in options]
        start = value if value in options else min(options, key=lambda o: abs(o - value))
        return W.SelectionSlider(options=options, value=start, **widget)
    lo = param.check(lo) if lo is not None else param.lo
    hi = param.check(hi) if hi is not None else param.hi
    if lo is None or hi is None:
        raise ParamError(f"control for {param.name!r}: give lo and hi ({param.allowed()})")
    start = min(max(value, lo), hi)
    if param.kind is float:
        return W.FloatSlider(value=start, min=lo, max=hi, **widget)
    return W.IntSlider(value=start, min=lo, max=hi, **widget)


def controls(spec: ParamSpec, values: Mapping[str, Any], **per_param: Mapping[str, Any]) -> dict[str, W.Widget]:
    """``{name: control}`` for the named parameters, in the order given, started at ``values``.

    Each keyword names a parameter of ``spec`` and gives :func:`control`'s
    options for it (``{}`` for none): ``controls(spec, P, workload={}, cpus={"hi": 8})``.
    """
    return {name: control(spec[name], values[name], **opts) for name, opts in per_param.items()}


def spec_of(params: Mapping[str, Any]) -> ParamSpec:
    """The parameter spec validated ``params`` (a chapter's ``P``): where a panel's controls take their ranges."""
    spec = getattr(params, "spec", None)
    if spec is None:
        raise ParamError("a control panel needs the chapter's validated parameters (chapters.validate(...)), "
                         "not a plain mapping: their spec gives each control its range")
    return spec
