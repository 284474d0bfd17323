"""The one table of namespaces and fixed IRIs; every module takes its IRIs from here."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rdflib import Namespace
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS, XSD

BASE = "https://w3id.org/cmokg/"
CMO = Namespace(BASE + "ontology#")
ID = Namespace(BASE + "id/")
FABIO = Namespace("http://purl.org/spar/fabio/")
PRISM = Namespace("http://prismstandard.org/namespaces/basic/2.0/")
CITO = Namespace("http://purl.org/spar/cito/")
OA = Namespace("http://www.w3.org/ns/oa#")
SH = Namespace("http://www.w3.org/ns/shacl#")

ONTOLOGY_GRAPH = BASE + "graph/ontology"
VOCAB_GRAPH = BASE + "graph/vocab"
BATCH_PREFIX = BASE + "id/batch/"

PREFIXES: dict[str, str] = {
    "cmo": str(CMO),
    "id": str(ID),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": str(SKOS),
    "dcterms": str(DCTERMS),
    "prov": str(PROV),
    "fabio": str(FABIO),
    "prism": str(PRISM),
    "cito": str(CITO),
    "oa": str(OA),
    "sh": str(SH),
}

_SEPARATORS = re.compile(r"[^a-z0-9\u0080-\U0010ffff]+")  # runs of ASCII characters other than letters and digits


@lru_cache(maxsize=1 << 16)  # the same keys recur on every row that refers to them
def slug(text: str) -> str:
    """A stable IRI segment: NFKD, lower case, runs of ASCII characters other than letters and digits become '-'.

    What decomposes to ASCII keeps its ASCII letters and digits and loses its accents (`Calderón` ->
    `calderon`, `ﬁ` -> `fi`). Letters and digits with no ASCII decomposition are kept, case-folded, with the
    marks that go with them, and recomposed (NFC): `研究一`, `иванов-иван`, `дослідження`, `øster`, `strasse`
    (ß folds to ss). Every other non-ASCII character (symbols, punctuation such as `’` or `—`, emoji) is
    dropped without a trace, as it always was: `O’Brien` -> `obrien`. For a text made of ASCII and of
    letters that decompose to ASCII letters and accents, this is exactly the ASCII-only slug of earlier
    versions, so the IRIs already minted do not change. The result may be empty (a text with no letters or
    digits): callers must not use an empty slug as an identifier.
    """
    if text.isascii():  # the common case, at the speed of earlier versions
        return _SEPARATORS.sub("-", text.lower()).strip("-")
    out: list[str] = []
    attached = False  # whether a combining mark here belongs to a kept non-ASCII letter (and is kept)
    for ch in unicodedata.normalize("NFKD", text):
        if ch < "\x80":
            out.append(ch.lower())
            attached = False
        elif unicodedata.category(ch)[0] == "M":
            if attached:
                out.append(ch)
        elif unicodedata.category(ch)[0] in "LN":
            for c in unicodedata.normalize("NFKD", ch.casefold()):
                if c < "\x80":
                    out.append(c)
                    attached = False
                elif unicodedata.category(c)[0] in "LNM":
                    out.append(c)
                    attached = True
        else:
            attached = False
    return _SEPARATORS.sub("-", unicodedata.normalize("NFC", "".join(out))).strip("-")


def sparql_prologue() -> str:
    """PREFIX lines for every namespace in PREFIXES, for queries built in code."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())
