"""fraglife: models, probes and tools behind the fraglife design book.

The book asks what the networking stack must change when ``struct page``
loses its refcount, and what should own the lifetime of sk_buff fragments
instead. Chapters in ``book/`` narrate; everything they compute lives here.
"""

__version__ = "0.1.0"
