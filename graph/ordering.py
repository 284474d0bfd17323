"""Sorting IRIs in SPARQL fast on Oxigraph: a sort key that orders them as `ORDER BY ?var` does."""

from __future__ import annotations


def iri_order(var: str) -> str:
    """An ORDER BY key that sorts the IRIs bound to ?`var` as `ORDER BY ?var` does, in a fraction of the time on
    Oxigraph 0.5 on disk, which looks each IRI's text up in RocksDB at every comparison: 7.2 s to sort the 100k
    CMOCs of the benchmark's largest store, 1.2 s by this key, a string made by the query and compared in memory.
    The space appended keeps the order: no IRI holds a character at or below it, so an IRI still sorts before
    the longer IRIs it begins (CONCAT with "" is given back as the IRI's own text, and sorted as slowly)."""
    return f'CONCAT(STR(?{var}), " ")'
