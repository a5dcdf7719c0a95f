"""What the reader sees: the book's chart theme (plots), control panels (widgets), the sweep
chart (sweep), the model-against-kernel chart (compare), and one module per chapter, named after
its notebook (``book/NN_name.ipynb`` <-> ``views/name.py``) holding that chapter's charts and panel
views.

Views take DataFrames and records, and the labels they need (a policy order, a panel's extra
controls) from the chapter module passed in; a panel's ranges come from the spec the chapter's
parameters were validated by (``P.spec``). They import each other, never the model, the probes, a
chapter module or the registry.
"""

import sys

# jsonschema, under altair, loads rfc3987_syntax when it is installed, and that compiles its IRI grammars
# at import: seconds in every chapter's kernel. The Vega-Lite schema altair validates charts against has
# no "iri" format, so the views go without it (when nothing has loaded it already).
sys.modules.setdefault("rfc3987_syntax", None)
