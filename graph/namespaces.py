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

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1 << 16)  # the same keys recur on every row that refers to them
def slug(text: str) -> str:
    """A stable IRI segment: NFKD, ASCII-folded, lower case, runs of other characters become '-'."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return _NON_ALNUM.sub("-", folded).strip("-")


def sparql_prologue() -> str:
    """PREFIX lines for every namespace in PREFIXES, for queries built in code."""
    return "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in PREFIXES.items())
