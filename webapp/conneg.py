"""Content negotiation: the media-type tables and one function choosing by Accept (q-values, wildcards).

The rules are RFC 9110's: each offered type takes the q-value of the most specific media range that matches
it (`text/turtle` beats `text/*` beats `*/*`); q=0 excludes; among types of equal q the server's own order
(the table order) decides. Parameters other than q on a media range are ignored. A `format` parameter
(`json`, `xml`, `csv`, `tsv`, `turtle`, … or a media type), as SPARQLWrapper and others send it as `format`,
`output` or `results`, wins over Accept.
"""

from __future__ import annotations

from typing import TypeVar

import pyoxigraph as ox

T = TypeVar("T")

# media type -> serializer; the first entry is the default for */*
RESULT_TYPES: dict[str, ox.QueryResultsFormat] = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/xml": ox.QueryResultsFormat.XML,
    "text/xml": ox.QueryResultsFormat.XML,
}
# CONSTRUCT / DESCRIBE results and linked-data descriptions
RDF_TYPES: dict[str, ox.RdfFormat] = {
    "text/turtle": ox.RdfFormat.TURTLE,
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "text/plain": ox.RdfFormat.N_TRIPLES,  # N-Triples' old media type
    "application/xml": ox.RdfFormat.RDF_XML,
    "application/json": ox.RdfFormat.JSON_LD,
}
# whole datasets (dumps)
DATASET_TYPES: dict[str, ox.RdfFormat] = {
    "application/n-quads": ox.RdfFormat.N_QUADS,
    "application/trig": ox.RdfFormat.TRIG,
}
HTML = "text/html"

FORMAT_ALIASES: dict[str, tuple[str, ...]] = {
    # alias -> candidate media types, in order (the first one a table holds is taken)
    "json": ("application/sparql-results+json", "application/ld+json"),
    "srj": ("application/sparql-results+json",),
    "xml": ("application/sparql-results+xml", "application/rdf+xml"),
    "srx": ("application/sparql-results+xml",),
    "csv": ("text/csv",),
    "tsv": ("text/tab-separated-values",),
    "turtle": ("text/turtle",),
    "ttl": ("text/turtle",),
    "n3": ("text/turtle",),
    "nt": ("application/n-triples",),
    "ntriples": ("application/n-triples",),
    "n-triples": ("application/n-triples",),
    "rdf": ("application/rdf+xml",),
    "rdfxml": ("application/rdf+xml",),
    "rdf+xml": ("application/rdf+xml",),
    "jsonld": ("application/ld+json",),
    "json-ld": ("application/ld+json",),
    "nq": ("application/n-quads",),
    "nquads": ("application/n-quads",),
    "trig": ("application/trig",),
    "html": (HTML,),
}
# file suffixes of linked-data resources and dumps
SUFFIXES: dict[str, str] = {
    ".ttl": "text/turtle",
    ".jsonld": "application/ld+json",
    ".nt": "application/n-triples",
    ".rdf": "application/rdf+xml",
    ".nq": "application/n-quads",
    ".trig": "application/trig",
    ".html": HTML,
}
# W3C format IRIs (https://www.w3.org/ns/formats/) for the service description
FORMAT_IRIS: dict[str, str] = {
    "application/sparql-results+json": "http://www.w3.org/ns/formats/SPARQL_Results_JSON",
    "application/sparql-results+xml": "http://www.w3.org/ns/formats/SPARQL_Results_XML",
    "text/csv": "http://www.w3.org/ns/formats/SPARQL_Results_CSV",
    "text/tab-separated-values": "http://www.w3.org/ns/formats/SPARQL_Results_TSV",
    "text/turtle": "http://www.w3.org/ns/formats/Turtle",
    "application/ld+json": "http://www.w3.org/ns/formats/JSON-LD",
    "application/n-triples": "http://www.w3.org/ns/formats/N-Triples",
    "application/rdf+xml": "http://www.w3.org/ns/formats/RDF_XML",
    "application/n-quads": "http://www.w3.org/ns/formats/N-Quads",
    "application/trig": "http://www.w3.org/ns/formats/TriG",
}


def parse_accept(header: str | None) -> list[tuple[str, float]]:
    """Media ranges with their q-values, in header order. No header means `*/*`."""
    if header is None or not header.strip():
        return [("*/*", 1.0)]
    ranges = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        if media == "*":  # some clients send a bare `*`
            media = "*/*"
        q = 1.0
        for f in fields[1:]:
            key, _, value = f.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = max(0.0, min(1.0, float(value)))
                except ValueError:
                    q = 0.0
        ranges.append((media, q))
    return ranges


def _specificity(media_range: str, mime: str) -> int:
    """-1 if the range does not match `mime`, else 0 for */*, 1 for type/*, 2 for an exact match."""
    if media_range == mime:
        return 2
    if media_range == "*/*":
        return 0
    if media_range.endswith("/*") and mime.startswith(media_range[:-1]):
        return 1
    return -1


def quality(accept: str | None, mime: str) -> float:
    """The q-value the Accept header gives `mime` (0 when it is not acceptable)."""
    best, q = -1, 0.0
    for media_range, rq in parse_accept(accept):
        s = _specificity(media_range, mime)
        if s > best:
            best, q = s, rq
    return q


def choose(accept: str | None, table: dict[str, T], format_param: str | None = None) -> tuple[str, T] | None:
    """The best (media type, serializer) from `table`, or None when nothing acceptable can be produced."""
    if format_param:
        fp = format_param.strip().lower()
        candidates = FORMAT_ALIASES.get(fp, (fp.split(";")[0].strip(),))
        for mime in candidates:
            if mime in table:
                return mime, table[mime]
        return None
    best: tuple[str, T] | None = None
    best_q = 0.0
    for mime, value in table.items():
        q = quality(accept, mime)
        if q > best_q:
            best, best_q = (mime, value), q
    return best


def prefers_html(accept: str | None, table: dict[str, T]) -> bool:
    """True when the client ranks text/html above every type in `table` (browsers do; `*/*` does not)."""
    if not accept:
        return False
    q_html = quality(accept, HTML)
    if q_html <= 0:
        return False
    # only an explicit text/html (not a wildcard) makes a browser
    if not any(_specificity(r, HTML) == 2 for r, _ in parse_accept(accept)):
        return False
    return all(q_html >= quality(accept, mime) for mime in table)
