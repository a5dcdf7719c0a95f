"""What the reader sees: the book's chart theme (plots), control panels (widgets), the sweep
chart (sweep), and one module per chapter, named after its notebook
(``book/NN_name.ipynb`` <-> ``views/name.py``) holding that chapter's charts and panel views.

Views take DataFrames and records and return charts; they import model definitions
(policy and workload names, op names) and each other, never a chapter's analysis module.
"""
