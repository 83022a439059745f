"""advexp_book: the book's machinery, beside the library it reads.

Each chapter's experiments, the claims the book tests and their report tables,
the chapter figures, and running the notebooks and building the book. It
imports :mod:`advexp_lib`; the library never imports it (``tests/test_layering.py``).
It is not part of the library's wheel: the repository's set-up puts it on the
path of its virtual environment (``scripts/bootstrap.sh``).

The modules form layers (:data:`LAYERS`); a module imports only modules listed
before it. From the bottom:

1. ``records`` (each chapter's typed record) and ``shipped`` (how ``data/`` was made from the
   authors' published networks);
2. ``claims`` (the claims the book tests, each with its quote, its rule and the function that
   reads its measurement from the records) and ``reproduce`` (notebooks, their records on
   disk and the book build);
3. ``experiments`` (the measurements behind the chapters), ``companion_eval``
   (Boopathy et al.'s protocol with its audit and paired tests) and ``one_layer``
   (Chalasani et al.'s logistic-regression experiments on UCI Mushroom and Spambase);
4. ``figures`` (the chapter figures) and ``chapters`` (each chapter's results to its record);
5. ``report``: tables and the claims' verdicts;
6. the command line: ``cli``, ``__main__`` (``python -m advexp_book reproduce|book``).
"""

__all__ = ["LAYERS"]

LAYERS = (
    ("records", "shipped"),
    ("claims", "reproduce"),
    ("experiments", "companion_eval", "one_layer"),
    ("figures", "chapters"),
    ("report",),
    ("cli", "__main__"),
)
"""The package's modules from the bottom up: each imports only modules listed before it."""
