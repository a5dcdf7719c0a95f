# nbconvert configuration for fraglife's offline slide decks (`fraglife slides`).
#
# nbconvert's reveal and lab templates load six things from CDNs: reveal.js,
# require.js, jQuery, MathJax, the Jupyter widget manager and font-awesome (and
# mermaid, whose URL is not configurable: the fraglife_reveal template drops
# it). Every one points here at a copy under `_vendor/` next to the deck, which
# `fraglife slides` copies from node_modules/ (package.json + package-lock.json,
# installed by `make vendor` with `npm ci`). A deck folder is self-contained:
# copy build/slides/ to a USB stick and open any deck from disk.
#
# Usable directly as well:
#   jupyter nbconvert --config lib/fraglife/publish/data/nbconvert_offline.py --to slides build/executed/00_overview.ipynb
# (the deck then needs build/slides/_vendor/ beside it).
import os

c = get_config()  # noqa: F821  (provided by traitlets when this file is loaded)

VENDOR = "_vendor"
HERE = os.path.dirname(os.path.abspath(__file__))

# The template: reveal with mermaid dropped and the book's look (see templates/fraglife_reveal).
c.SlidesExporter.extra_template_basedirs = [os.path.join(HERE, "templates")]
c.SlidesExporter.template_name = "fraglife_reveal"

# 1. reveal.js: the major version must match the template's (nbconvert 7 names 4.x).
c.SlidesExporter.reveal_url_prefix = f"{VENDOR}/reveal.js"
c.SlidesExporter.reveal_theme = "white"  # 'simple' (nbconvert's default) imports Google fonts
c.SlidesExporter.reveal_transition = "none"
c.SlidesExporter.reveal_number = "c/t"
c.SlidesExporter.reveal_width = "1280"
c.SlidesExporter.reveal_height = "760"
# No scroll boxes: a slide shows its content at its natural size, so a slide too tall or too wide
# is seen and measured (`fraglife slides` lists them, fraglife.publish.fit), never hidden in a scroll box.
c.SlidesExporter.reveal_scroll = False
# 2. require.js (the template loads reveal through it)
c.HTMLExporter.require_js_url = f"{VENDOR}/requirejs/require.js"
# 3. jQuery
c.HTMLExporter.jquery_url = f"{VENDOR}/jquery/dist/jquery.min.js"
# 4. MathJax 2 (the template's configuration is MathJax 2 syntax)
c.HTMLExporter.mathjax_url = f"{VENDOR}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
# 5. Widget manager: none is vendored. The exports drop live widget views and the
#    notebook's widget state (fraglife.views.widgets.strip_live), so the template never
#    emits the loader; should it ever, it points at a local path, not a CDN.
c.HTMLExporter.jupyter_widgets_base_url = f"{VENDOR}/"
c.HTMLExporter.widget_renderer_url = f"{VENDOR}/no-widget-manager.js"
# 6. font-awesome
c.SlidesExporter.font_awesome_url = f"{VENDOR}/font-awesome/css/font-awesome.min.css"

# No In[ ]/Out[ ] prompts on slides.
c.TemplateExporter.exclude_input_prompt = True
c.TemplateExporter.exclude_output_prompt = True
