"""Linked data against a live `cmokg serve`: /id/... pages and RDF, /ontology, /shapes, /void, dumps.

The served store is the seed graph plus one evidence fragment whose quote holds a `<script>` element, to
check that every literal is escaped in HTML. Pages are parsed as HTML (elements by id, links, text), RDF
answers as graphs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pyoxigraph as ox
import pytest
import requests
from conformance.server import live_server, parse_rdf
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import OWL, RDF

from graph.store import EvidenceStore

pytestmark = pytest.mark.timeout(120)

CMO = "https://w3id.org/cmokg/ontology#"
ID = "https://w3id.org/cmokg/id/"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SCRIPT_QUOTE = '<script>alert("pwned")</script> & <b>bold</b>'
VOID = "http://rdfs.org/ns/void#"
UNICODE_IRI = f"{ID}source/研究一"


@pytest.fixture(scope="module")
def seed_copy(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("ld-seed")
    shutil.copytree(seed_store_path, work / "store")
    store = EvidenceStore(work / "store")
    e = f"{ID}evidence/xss-e1"
    quote = SCRIPT_QUOTE.replace('"', '\\"')
    store.update(f"""INSERT DATA {{ GRAPH <{ID}batch/xss-test> {{
        <{e}> a <{CMO}EvidenceFragment> ; <{CMO}supports> <{ID}cmoc/tierney2020-c1> ;
              <http://www.w3.org/ns/oa#hasTarget> <{e}/target> ; <{CMO}page> "7<8" .
        <{e}/target> <http://www.w3.org/ns/oa#hasSource> <{ID}source/tierney2020> ;
              <http://www.w3.org/ns/oa#hasSelector> <{e}/quote> .
        <{e}/quote> <http://www.w3.org/ns/oa#exact> "{quote}" .
        <{UNICODE_IRI}> <http://www.w3.org/2000/01/rdf-schema#label> "研究一" . }} }}""")
    store.flush()
    del store
    return work / "store"


@pytest.fixture(scope="module")
def server(seed_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(seed_copy, tmp_path_factory.mktemp("ld"), CMOKG_QUERY_WORKERS="1") as url:
        yield url


@pytest.fixture(scope="module")
def store(seed_copy: Path) -> EvidenceStore:
    """What the server serves (it serves a copy of this store), read directly."""
    return EvidenceStore(seed_copy, read_only=True)


class Page(HTMLParser):
    """Text by element id, every link, every element name."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, list[str]] = {}
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []
        self._open: list[str | None] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
        if tag not in ("br", "link", "meta", "input"):
            self._open.append(a.get("id"))
            if a.get("id"):
                self.by_id.setdefault(a["id"] or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("br", "link", "meta", "input") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for i in self._open:
            if i:
                self.by_id[i].append(data)

    def of(self, ident: str) -> str:
        return " ".join("".join(self.by_id.get(ident, [])).split())

    @property
    def all_text(self) -> str:
        return " ".join("".join(self.text).split())


def _page(server: str, path: str) -> Page:
    r = requests.get(server + path, headers={"Accept": BROWSER}, timeout=10)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("text/html")
    return Page(r.text)


def _one(store: EvidenceStore, sparql: str) -> str:
    rows = store.select(sparql)
    assert rows, sparql
    value = next(iter(rows[0].values()))
    assert value is not None
    return " ".join(value.value.split())


# -- CMOC page ------------------------------------------------------------------------------------------


def test_cmoc_page_shows_the_configuration(server: str, store: EvidenceStore) -> None:
    c = f"<{ID}cmoc/tierney2020-c1>"
    page = _page(server, "/id/cmoc/tierney2020-c1")
    assert page.of("context") == _one(store, f"SELECT ?d WHERE {{ {c} cmo:hasContext/cmo:description ?d }}")
    assert page.of("resource") == _one(
        store, f"SELECT ?d WHERE {{ {c} cmo:hasMechanism/cmo:hasResource/cmo:description ?d }}")
    assert page.of("reasoning") == _one(
        store, f"SELECT ?d WHERE {{ {c} cmo:hasMechanism/cmo:hasReasoning/cmo:description ?d }}")
    assert page.of("outcome") == _one(store, f"SELECT ?d WHERE {{ {c} cmo:hasOutcome/cmo:description ?d }}")
    assert _one(store, f"SELECT ?s WHERE {{ {c} cmo:statement ?s }}") in page.of("statement")
    links = set(page.links)
    assert {"/id/concept/setting/general-practice", "/id/concept/setting/link-workers"} <= links
    assert "/id/concept/framework/trustful-interactions" in links
    assert "/id/concept/framework/interpersonal-relations" in links  # its dimension
    assert "/id/cmoc/tierney2020-c2" in links  # tierney2020-c2 leads to c1
    assert "/id/source/tierney2020" in links  # the review it is stated in
    assert "https://doi.org/10.1186/s12916-020-1510-7" in links
    assert "Tierney, Stephanie" in page.of("reviews") and "BMC Medicine" in page.of("reviews")


def test_cmoc_page_shows_every_quote_with_its_appraisal(server: str, store: EvidenceStore) -> None:
    page = _page(server, "/id/cmoc/tierney2020-c1")
    rows = store.select(f"""SELECT ?e ?q ?rel ?level WHERE {{
        {{ ?e cmo:supports <{ID}cmoc/tierney2020-c1> BIND("supports" AS ?rel) }}
        UNION {{ ?e cmo:refutes <{ID}cmoc/tierney2020-c1> BIND("refutes" AS ?rel) }}
        ?e oa:hasTarget/oa:hasSelector/oa:exact ?q OPTIONAL {{ ?e cmo:interpretiveLevel/skos:prefLabel ?level }} }}""")
    assert len(rows) == 5  # four from the seed, one injected
    for row in rows:
        key = row["e"].value.rsplit("/", 1)[-1]  # type: ignore[union-attr]
        block = page.of(key)
        assert " ".join(row["q"].value.split()) in block  # type: ignore[union-attr]
        assert row["rel"].value in block  # type: ignore[union-attr]
        if row["level"] is not None:
            assert f"interpretive level: {row['level'].value}" in block
    assert "relevance: high" in page.of("tierney2020-e1") and "rigour: moderate" in page.of("tierney2020-e1")
    assert "/id/concept/level/reviewer" in page.links


def test_every_literal_is_escaped(server: str) -> None:
    r = requests.get(server + "/id/cmoc/tierney2020-c1", headers={"Accept": BROWSER}, timeout=10)
    page = Page(r.text)
    assert "script" not in page.tags and "b" not in page.tags
    assert SCRIPT_QUOTE in page.all_text
    assert "p. 7<8" in page.all_text
    assert "<script>" not in r.text


def test_pages_need_no_javascript(server: str) -> None:
    # /sparql is the YASGUI editor, the one page allowed to need JavaScript (its plain form is inside <noscript>:
    # tests/test_assets.py and tests/browser/)
    for path in ("/", "/id/cmoc/tierney2020-c1", "/id/source/tierney2020", "/ontology", "/shapes"):
        assert "script" not in _page(server, path).tags, path


# -- other pages ----------------------------------------------------------------------------------------


def test_source_page(server: str, store: EvidenceStore) -> None:
    page = _page(server, "/id/source/tierney2020")
    assert page.of("year") == "2020" and page.of("venue") == "BMC Medicine"
    assert page.of("authors").startswith("Tierney, Stephanie; Wong, Geoff")
    assert "https://doi.org/10.1186/s12916-020-1510-7" in page.links
    cmocs = {r["c"].value for r in store.select(  # type: ignore[union-attr]
        f"SELECT ?c WHERE {{ ?c cmo:statedIn <{ID}source/tierney2020> }}")}
    assert {"/id/" + c.removeprefix(ID) for c in cmocs} <= set(page.links)


def test_review_page_lists_what_it_cites(server: str, store: EvidenceStore) -> None:
    cited = {r["d"].value for r in store.select(  # type: ignore[union-attr]
        f"SELECT ?d WHERE {{ <{ID}source/calderon2021> cito:cites ?d }}")}
    page = _page(server, "/id/source/calderon2021")
    assert {"/id/" + d.removeprefix(ID) for d in cited} <= set(page.links)


def test_concept_page(server: str, store: EvidenceStore) -> None:
    page = _page(server, "/id/concept/framework/buy-in")
    assert page.of("definition").startswith("A stakeholder's acceptance")
    assert "/id/concept/framework/individual-characteristics" in page.links
    cmocs = {r["c"].value for r in store.select(  # type: ignore[union-attr]
        f"SELECT ?c WHERE {{ ?c cmo:drawsOn <{ID}concept/framework/buy-in> }}")}
    assert cmocs and {"/id/" + c.removeprefix(ID) for c in cmocs} <= set(page.links)


def test_batch_page(server: str, store: EvidenceStore) -> None:
    batch = next(b for b in store.batches() if b.label.startswith("04-tierney"))
    page = _page(server, "/id/" + batch.iri.removeprefix(ID))
    assert batch.sha256 in page.all_text
    assert "/id/cmoc/tierney2020-c1" in page.links


def test_generic_resource_page(server: str) -> None:
    page = _page(server, "/id/cmoc/tierney2020-c1/context")
    assert "/id/cmoc/tierney2020-c1" in page.links


# -- RDF ------------------------------------------------------------------------------------------------

FORMATS = ["text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml"]
SUFFIX = {"text/turtle": ".ttl", "application/ld+json": ".jsonld", "application/n-triples": ".nt",
          "application/rdf+xml": ".rdf"}


def _expected(store: EvidenceStore, iri: str) -> set[tuple[str, str]]:
    node = ox.NamedNode(iri)
    return {(q.predicate.value, str(q.object)) for q in store.ox.quads_for_pattern(node, None, None, None)}


@pytest.mark.parametrize("mime", FORMATS)
def test_resource_rdf_by_accept_and_by_suffix(server: str, store: EvidenceStore, mime: str) -> None:
    iri = f"{ID}cmoc/tierney2020-c1"
    by_accept = requests.get(server + "/id/cmoc/tierney2020-c1", headers={"Accept": mime}, timeout=10)
    assert by_accept.status_code == 200 and by_accept.headers["Content-Type"].startswith(mime)
    by_suffix = requests.get(server + "/id/cmoc/tierney2020-c1" + SUFFIX[mime], timeout=10)
    assert by_suffix.headers["Content-Type"].startswith(mime)
    g1 = parse_rdf(by_accept.content, by_accept.headers["Content-Type"])
    g2 = parse_rdf(by_suffix.content, by_suffix.headers["Content-Type"])
    assert isomorphic(g1, g2)
    subj = URIRef(iri)
    assert {(str(p), o.n3()) for p, o in g1.predicate_objects(subj)} == _expected(store, iri)
    # the parts minted under the CMOC's IRI, and what points at it
    assert (URIRef(iri + "/context"), URIRef(CMO + "description"), None) in g1
    assert (URIRef(f"{ID}evidence/tierney2020-e1"), URIRef(CMO + "supports"), subj) in g1


def test_rdflib_parses_resource_iris(server: str) -> None:
    for path in ("/id/cmoc/tierney2020-c1", "/id/source/tierney2020", "/id/concept/framework/buy-in"):
        g = Graph()
        g.parse(server + path)
        assert (URIRef(ID + path.removeprefix("/id/")), RDF.type, None) in g


def test_link_header_and_unknown_iris(server: str) -> None:
    r = requests.get(server + "/id/cmoc/tierney2020-c1", headers={"Accept": "text/turtle"}, timeout=10)
    alternates = {v["type"]: v["url"] for v in r.links.values() if v.get("rel") == "alternate"}
    # requests keys links by rel: parse the header ourselves for every alternate
    header = r.headers["Link"]
    for mime, suffix in SUFFIX.items():
        assert f'</id/cmoc/tierney2020-c1{suffix}>; rel="alternate"; type="{mime}"' in header
    assert alternates
    for path in ("/id/cmoc/nope", "/id/cmoc/nope.ttl", "/id/nothing/here"):
        assert requests.get(server + path, headers={"Accept": "text/turtle"}, timeout=10).status_code == 404
    r = requests.get(server + "/id/cmoc/tierney2020-c1", headers={"Accept": "image/png"}, timeout=10)
    assert r.status_code == 406


@pytest.mark.parametrize("rest", ["%FF", "%C3", "%25", "%25zz", "x%5B", "x%5D", "a%7Fb", "%EF%BF%BF", "%ED%A0%80",
                                  "%FF.ttl", "x%5B.html"])
def test_paths_that_are_no_iri_are_404(server: str, rest: str) -> None:
    for accept in (BROWSER, "text/turtle"):
        r = requests.get(f"{server}/id/cmoc/{rest}", headers={"Accept": accept}, timeout=10)
        assert r.status_code == 404, (rest, accept)


def test_an_iri_in_non_latin_letters_resolves(server: str) -> None:
    """/id/source/研究一 (percent-encoded UTF-8 in the path) is the Unicode IRI; its Link header carries it as
    a URI (HTTP headers are Latin-1)."""
    r = requests.get(f"{server}/id/source/研究一", headers={"Accept": "text/turtle"}, timeout=10)
    assert r.status_code == 200
    g = parse_rdf(r.content, r.headers["Content-Type"])
    assert (URIRef(UNICODE_IRI), URIRef("http://www.w3.org/2000/01/rdf-schema#label"), Literal("研究一")) in g
    assert '</id/source/%E7%A0%94%E7%A9%B6%E4%B8%80.ttl>; rel="alternate"' in r.headers["Link"]
    for path, accept in (("/id/source/研究一", BROWSER), ("/id/source/研究一.ttl", "*/*"),
                         ("/id/source/%E7%A0%94%E7%A9%B6%E4%B8%80.nt", "*/*")):
        r = requests.get(server + path, headers={"Accept": accept}, timeout=10)
        assert r.status_code == 200, path
        assert "研究一" in r.text


# -- ontology, shapes, VoID, dumps ----------------------------------------------------------------------


def test_ontology_and_shapes_by_conneg(server: str) -> None:
    page = _page(server, "/ontology")
    assert "CMOConfiguration" in page.by_id
    for accept in ("text/turtle", "application/ld+json"):
        r = requests.get(server + "/ontology", headers={"Accept": accept}, timeout=10)
        g = parse_rdf(r.content, r.headers["Content-Type"])
        assert (URIRef("https://w3id.org/cmokg/ontology"), RDF.type, OWL.Ontology) in g
        assert (URIRef(CMO + "CMOConfiguration"), RDF.type, OWL.Class) in g
    page = _page(server, "/shapes")
    r = requests.get(server + "/shapes", headers={"Accept": "text/turtle"}, timeout=10)
    g = parse_rdf(r.content, r.headers["Content-Type"])
    shapes = set(g.subjects(RDF.type, URIRef("http://www.w3.org/ns/shacl#NodeShape")))
    assert shapes and all(str(s).split("#")[-1] in page.by_id for s in shapes if isinstance(s, URIRef))


def test_void_statistics(server: str, store: EvidenceStore) -> None:
    r = requests.get(server + "/void", headers={"Accept": "text/turtle"}, timeout=10)
    g = parse_rdf(r.content, r.headers["Content-Type"])
    ds = next(iter(g.subjects(RDF.type, URIRef(VOID + "Dataset"))))
    distinct = {q.triple for q in store.ox}  # each triple once, however many graphs hold it
    assert int(g.value(ds, URIRef(VOID + "triples"))) == len(distinct)  # type: ignore[arg-type]
    assert g.value(ds, URIRef(VOID + "sparqlEndpoint")) == URIRef(server + "/sparql")
    dumps = set(g.objects(ds, URIRef(VOID + "dataDump")))
    assert URIRef(server + "/dump.nq") in dumps
    partitions = {g.value(p, URIRef(VOID + "class")): int(g.value(p, URIRef(VOID + "entities")))  # type: ignore[arg-type]
                  for p in g.objects(ds, URIRef(VOID + "classPartition"))}
    assert partitions[URIRef(CMO + "CMOConfiguration")] == 49
    subsets = {g.value(s, URIRef("http://www.w3.org/ns/sparql-service-description#name"))
               for s in g.objects(ds, URIRef(VOID + "subset"))}
    assert {URIRef(b.iri) for b in store.batches()} <= subsets


@pytest.mark.parametrize(("path", "fmt"), [("/dump.nq", ox.RdfFormat.N_QUADS), ("/dump.trig", ox.RdfFormat.TRIG)])
def test_dumps_stream_every_quad(server: str, store: EvidenceStore, path: str, fmt: ox.RdfFormat) -> None:
    with requests.get(server + path, stream=True, timeout=30) as r:
        assert r.status_code == 200
        assert "Content-Length" not in r.headers  # streamed
        body = b"".join(r.iter_content(65536))
    quads = set(ox.parse(body, fmt))
    assert quads == store.quads()


def test_home_links_resolve(server: str) -> None:
    page = _page(server, "/")
    for href in page.links:
        if href.startswith("/"):
            assert requests.get(urljoin(server, href), headers={"Accept": BROWSER}, timeout=10).status_code == 200


def test_ontology_terms_link_to_their_entry_on_this_server(server: str, store: EvidenceStore) -> None:
    """Types and properties linked to https://w3id.org/cmokg/ontology#…, which does not resolve to this server:
    they link to their entry on /ontology, which has it."""
    fragment = next(iter(store.query("SELECT ?e WHERE { ?e a <https://w3id.org/cmokg/ontology#EvidenceFragment> } "
                                     "ORDER BY ?e LIMIT 1")))["e"].value  # type: ignore[index]
    page = Page(requests.get(urljoin(server, "/id/" + fragment.split("/id/", 1)[1]), headers={"Accept": BROWSER},
                             timeout=10).text)
    assert "/ontology#EvidenceFragment" in page.links
    assert not [link for link in page.links if link.startswith("https://w3id.org/cmokg/ontology")]
    ontology = Page(requests.get(server + "/ontology", headers={"Accept": BROWSER}, timeout=10).text)
    for link in page.links:
        if link.startswith("/ontology#"):
            assert link.split("#", 1)[1] in ontology.by_id, link
