"""Content negotiation: one table of media types, one function choosing by Accept (q-values, wildcards)."""

from __future__ import annotations

from typing import TypeVar

import pyoxigraph as ox

T = TypeVar("T")

# media type -> serializer; the first entry is the default
RESULT_TYPES: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}
RDF_TYPES: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/ld+json": ox.RdfFormat.JSON_LD,
}
FORMAT_ALIASES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "turtle": "text/turtle",
    "ttl": "text/turtle",
    "nt": "application/n-triples",
    "ntriples": "application/n-triples",
    "rdfxml": "application/rdf+xml",
    "jsonld": "application/ld+json",
}


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """Media ranges with their q-values, best first (stable for equal q)."""
    if not header:
        return [("*/*", 1.0)]
    ranges = []
    for i, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = max(0.0, min(1.0, float(f[2:])))
                except ValueError:
                    q = 0.0
        ranges.append((fields[0].lower(), q, i))
    ranges.sort(key=lambda r: (-r[1], r[2]))
    return [(m, q) for m, q, _ in ranges]


def choose(accept: str | None, table: dict[str, T], format_param: str | None = None) -> tuple[str, T] | None:
    """The best (media type, serializer) from `table` for an Accept header or a `format` parameter."""
    if format_param:
        mime = FORMAT_ALIASES.get(format_param.lower(), format_param.lower())
        return (mime, table[mime]) if mime in table else None
    for media_range, q in parse_accept(accept):
        if q <= 0:
            continue
        if media_range in table:
            return media_range, table[media_range]
        if media_range == "*/*":
            first = next(iter(table))
            return first, table[first]
        if media_range.endswith("/*"):
            prefix = media_range[:-1]
            for mime, fmt in table.items():
                if mime.startswith(prefix):
                    return mime, fmt
    return None
