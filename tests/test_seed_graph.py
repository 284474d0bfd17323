"""The seed graph built from data/: what it must hold, and that it conforms as a whole."""

from __future__ import annotations

import pyoxigraph as ox
from pyshacl import validate
from rdflib import Graph

from graph.namespaces import sparql_prologue
from graph.store import EvidenceStore
from graph.validate import ontology_graph, shapes_graph


def _rows(store: EvidenceStore, q: str) -> list[dict]:
    return store.select(q)


def _int(store: EvidenceStore, q: str) -> int:
    [row] = store.select(q)
    value = next(iter(row.values()))
    assert isinstance(value, ox.Literal)
    return int(value.value)


def test_at_least_30_cmocs_across_at_least_5_reviews(seed_evidence_store: EvidenceStore) -> None:
    assert _int(seed_evidence_store, "SELECT (COUNT(?c) AS ?n) WHERE { ?c a cmo:CMOConfiguration }") >= 30
    assert _int(seed_evidence_store, """SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE {
        ?c a cmo:CMOConfiguration ; cmo:statedIn ?r . ?r a cmo:Review }""") >= 5


def test_every_cmoc_is_supported_by_a_quote_from_a_source(seed_evidence_store: EvidenceStore) -> None:
    unsupported = _rows(seed_evidence_store, """SELECT ?c WHERE { ?c a cmo:CMOConfiguration
        FILTER NOT EXISTS { ?e cmo:supports ?c ; oa:hasTarget [ oa:hasSource ?s ; oa:hasSelector/oa:exact ?q ] .
                            ?s a cmo:Document } }""")
    assert unsupported == []
    participant = _rows(seed_evidence_store, """SELECT ?e WHERE {
        ?e cmo:interpretiveLevel <https://w3id.org/cmokg/id/concept/level/participant> }""")
    assert participant == [], "abstracts hold no participant quotes"


def test_seed_documents_have_full_bibliographic_data(seed_evidence_store: EvidenceStore) -> None:
    rows = _rows(seed_evidence_store, """SELECT ?s ?doi ?pmid ?year ?venue ?authors WHERE {
        VALUES ?s { <https://w3id.org/cmokg/id/source/calderon2021> <https://w3id.org/cmokg/id/source/griffiths2023> }
        ?s dcterms:title ?t ; prism:doi ?doi ; fabio:hasPublicationYear ?year ; prism:publicationName ?venue ;
           cmo:authorList ?authors . OPTIONAL { ?s fabio:hasPubMedId ?pmid } }""")
    by = {r["s"].value.rsplit("/", 1)[1]: r for r in rows}  # type: ignore[union-attr]
    assert by["calderon2021"]["doi"].value == "10.3399/BJGPO.2021.0017"  # type: ignore[union-attr]
    assert by["calderon2021"]["pmid"].value == "33849895"  # type: ignore[union-attr]
    assert by["griffiths2023"]["doi"].value == "10.4236/jss.2023.115006"  # type: ignore[union-attr]
    assert by["griffiths2023"]["year"].value == "2023"  # type: ignore[union-attr]


def test_link_worker_study_cites_its_46_references(seed_evidence_store: EvidenceStore) -> None:
    assert _int(seed_evidence_store, """SELECT (COUNT(DISTINCT ?r) AS ?n) WHERE {
        <https://w3id.org/cmokg/id/source/griffiths2023> cito:cites ?r . ?r a cmo:Document }""") == 46


def test_published_reviews_are_sources(seed_evidence_store: EvidenceStore) -> None:
    dois = {"10.1186/s12916-020-1510-7", "10.1111/hsc.12839", "10.1136/bmjopen-2021-057009",
            "10.1017/S1463423617000706", "10.1186/s12875-021-01407-x", "10.3310/ETND8254",
            "10.3389/fpubh.2025.1645353", "10.1177/07334648231154043", "10.1101/2021.10.15.21264908"}
    rows = _rows(seed_evidence_store, "SELECT ?doi WHERE { ?s a cmo:Document ; prism:doi ?doi }")
    assert dois <= {r["doi"].value for r in rows}  # type: ignore[union-attr]


def test_cmo_chains_and_contested_cmocs_exist(seed_evidence_store: EvidenceStore) -> None:
    assert _int(seed_evidence_store, "SELECT (COUNT(*) AS ?n) WHERE { ?a cmo:leadsTo ?b }") >= 4
    assert _int(seed_evidence_store, """SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE {
        ?s cmo:supports ?c . ?r cmo:refutes ?c }""") >= 2


def test_whole_seed_graph_conforms_to_the_shapes(seed_evidence_store: EvidenceStore) -> None:
    """Imports validate batch by batch; this validates the union of everything once."""
    data = Graph()
    nt = seed_evidence_store.query(sparql_prologue() + "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }")
    assert isinstance(nt, ox.QueryTriples)
    data.parse(data=nt.serialize(format=ox.RdfFormat.N_TRIPLES).decode(), format="nt")
    for t in ontology_graph():
        data.add(t)
    conforms, _results, text = validate(data, shacl_graph=shapes_graph(), inference="none", allow_warnings=True)
    assert conforms, text
