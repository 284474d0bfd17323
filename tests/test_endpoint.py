"""The SPARQL endpoint against a live `cmokg serve` on the seed graph, with real clients.

One server for the module (query timeout 2 s, 1000-row limit, 64 KiB bodies, update token set): SPARQLWrapper,
rdflib's SPARQLStore and plain `requests` with hand-written Accept headers. Every answer is parsed and checked
as bindings or triples.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conformance.server import TOKEN, live_server, parse_rdf
from rdflib import Graph, URIRef
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import CSV, JSON, POST, TURTLE, XML, SPARQLWrapper

from graph.store import EvidenceStore
from webapp import CONFIG, create_app

pytestmark = pytest.mark.timeout(120)

CMO = "https://w3id.org/cmokg/ontology#"
ID = "https://w3id.org/cmokg/id/"
Q_COUNT = f"SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE {{ ?c a <{CMO}CMOConfiguration> }}"
Q_TIERNEY = (f"SELECT ?e WHERE {{ ?e <{CMO}supports> <{ID}cmoc/tierney2020-c1> }} ORDER BY ?e")
TIERNEY_SUPPORT = {f"{ID}evidence/tierney2020-e1", f"{ID}evidence/tierney2020-e2"}
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(seed_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("endpoint")
    with live_server(seed_store_path, work, CMOKG_UPDATE_TOKEN=TOKEN, CMOKG_QUERY_TIMEOUT=str(TIMEOUT),
                     CMOKG_MAX_ROWS="1000", MAX_CONTENT_LENGTH="65536", CMOKG_QUERY_WORKERS="2") as url:
        yield url


@pytest.fixture(scope="module")
def endpoint(server: str) -> str:
    return server + "/sparql"


def _bindings(payload: bytes, var: str) -> set[str]:
    return {b[var]["value"] for b in json.loads(payload)["results"]["bindings"]}


# -- SPARQLWrapper --------------------------------------------------------------------------------------


def _wrapper(endpoint: str, query: str, fmt: str) -> SPARQLWrapper:
    w = SPARQLWrapper(endpoint)
    w.setQuery(query)
    w.setReturnFormat(fmt)
    return w


def test_sparqlwrapper_json(endpoint: str, seed_evidence_store: EvidenceStore) -> None:
    result = _wrapper(endpoint, Q_COUNT, JSON).queryAndConvert()
    assert isinstance(result, dict)
    assert int(result["results"]["bindings"][0]["n"]["value"]) == seed_evidence_store.counts()["cmocs"] == 49


def test_sparqlwrapper_xml(endpoint: str) -> None:
    doc = _wrapper(endpoint, Q_TIERNEY, XML).queryAndConvert()
    # a minidom Document of the SPARQL XML results format
    uris = {el.firstChild.data for el in doc.getElementsByTagName("uri")}  # type: ignore[union-attr]
    assert uris == TIERNEY_SUPPORT


def test_sparqlwrapper_csv(endpoint: str) -> None:
    data = _wrapper(endpoint, Q_TIERNEY, CSV).queryAndConvert()
    assert isinstance(data, bytes)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert {r["e"] for r in rows} == TIERNEY_SUPPORT


def test_sparqlwrapper_construct_as_turtle(endpoint: str) -> None:
    q = f"CONSTRUCT {{ ?e <{CMO}supports> ?c }} WHERE {{ ?e <{CMO}supports> ?c }}"
    data = _wrapper(endpoint, q, TURTLE).queryAndConvert()
    assert isinstance(data, bytes)
    g = Graph().parse(data=data, format="turtle")
    assert (URIRef(f"{ID}evidence/tierney2020-e1"), URIRef(f"{CMO}supports"),
            URIRef(f"{ID}cmoc/tierney2020-c1")) in g


def test_sparqlwrapper_post(endpoint: str) -> None:
    w = _wrapper(endpoint, Q_TIERNEY, JSON)
    w.setMethod(POST)
    result = w.queryAndConvert()
    assert isinstance(result, dict)
    assert {b["e"]["value"] for b in result["results"]["bindings"]} == TIERNEY_SUPPORT


def test_sparqlwrapper_update_with_the_token(endpoint: str) -> None:
    s = "https://example.org/update-test"
    w = SPARQLWrapper(endpoint)
    w.setMethod(POST)
    w.addCustomHttpHeader("Authorization", f"Bearer {TOKEN}")
    w.setQuery(f'INSERT DATA {{ GRAPH <{s}/g> {{ <{s}> <{s}/p> "written" }} }}')
    w.query()
    # the query workers see the write at once (fresh snapshot after each update)
    result = _wrapper(endpoint, f"SELECT ?o WHERE {{ <{s}> <{s}/p> ?o }}", JSON).queryAndConvert()
    assert isinstance(result, dict)
    assert [b["o"]["value"] for b in result["results"]["bindings"]] == ["written"]
    w.setQuery(f"DROP GRAPH <{s}/g>")
    w.query()
    ask = requests.get(endpoint, params={"query": f"ASK {{ <{s}> ?p ?o }}"}, timeout=10)
    assert json.loads(ask.content)["boolean"] is False


def test_update_without_or_with_a_wrong_token_is_refused(endpoint: str) -> None:
    body = "INSERT DATA { <https://example.org/x> <https://example.org/p> 1 }"
    r = requests.post(endpoint, data=body, headers={"Content-Type": "application/sparql-update"}, timeout=10)
    assert r.status_code == 401 and "Bearer" in r.headers["WWW-Authenticate"]
    r = requests.post(endpoint, data=body, timeout=10,
                      headers={"Content-Type": "application/sparql-update", "Authorization": "Bearer nope"})
    assert r.status_code == 403
    ask = requests.get(endpoint, params={"query": "ASK { <https://example.org/x> ?p ?o }"}, timeout=10)
    assert json.loads(ask.content)["boolean"] is False


def test_update_is_atomic(endpoint: str) -> None:
    """An update whose second operation fails leaves nothing of the first."""
    body = ("INSERT DATA { GRAPH <https://example.org/atomic> { <https://example.org/a> <https://example.org/p> 1 } } ;"
            " LOAD <file:///nonexistent> INTO GRAPH <https://example.org/atomic>")
    r = requests.post(endpoint, data=body, timeout=10,
                      headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 400  # LOAD is not on the allow-list: refused before anything runs
    body = ("INSERT DATA { GRAPH <https://example.org/atomic> { <https://example.org/a> <https://example.org/p> 1 } } ;"
            " CREATE GRAPH <https://example.org/atomic>")  # CREATE of an existing graph fails (not SILENT)
    r = requests.post(endpoint, data=body, timeout=10,
                      headers={"Content-Type": "application/sparql-update", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code >= 400
    ask = requests.get(endpoint, params={"query": "ASK { <https://example.org/a> ?p ?o }"}, timeout=10)
    assert json.loads(ask.content)["boolean"] is False


def test_update_is_off_by_default(seed_store_path: Path) -> None:
    app = create_app({"TESTING": True, "CMOKG_QUERY_WORKERS": 0,
                      "CMOKG_STORE_OBJECT": EvidenceStore(seed_store_path, read_only=True)})
    app.config["CMOKG_UPDATE_TOKEN"] = None
    r = app.test_client().post("/sparql", data="CLEAR ALL", headers={"Content-Type": "application/sparql-update",
                                                                     "Authorization": "Bearer anything"})
    assert r.status_code == 403


# -- rdflib SPARQLStore ---------------------------------------------------------------------------------


def test_rdflib_sparqlstore(endpoint: str) -> None:
    store = SPARQLStore(query_endpoint=endpoint, returnFormat="json")
    g = Graph(store=store)
    rows = list(g.query(Q_TIERNEY))
    assert {str(r[0]) for r in rows} == TIERNEY_SUPPORT  # type: ignore[index]
    assert (URIRef(f"{ID}cmoc/tierney2020-c1"), URIRef(f"{CMO}statedIn"), URIRef(f"{ID}source/tierney2020")) in g
    store.close()


# -- hand-written Accept headers ------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "expected"), [
    ("application/sparql-results+json", "application/sparql-results+json"),
    ("application/sparql-results+xml;q=0.9, text/csv;q=0.5", "application/sparql-results+xml"),
    ("text/csv;q=0.2, text/tab-separated-values;q=0.8", "text/tab-separated-values"),
    ("text/*", "text/csv"),
    ("*/*", "application/sparql-results+json"),
    ("application/*;q=0.1, text/tab-separated-values", "text/tab-separated-values"),
    ("application/sparql-results+json;q=0, */*;q=0.5", "application/sparql-results+xml"),
])
def test_select_conneg(endpoint: str, accept: str, expected: str) -> None:
    r = requests.get(endpoint, params={"query": Q_TIERNEY}, headers={"Accept": accept}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == expected
    if expected.endswith("json"):
        values = _bindings(r.content, "e")
    elif expected.endswith("xml"):
        ns = "{http://www.w3.org/2005/sparql-results#}"
        values = {el.text or "" for el in ET.fromstring(r.content).iter(f"{ns}uri")}
    elif expected == "text/csv":
        values = {row["e"] for row in csv.DictReader(io.StringIO(r.text))}
    else:
        values = {line.strip("<>") for line in r.text.splitlines()[1:]}
    assert values == TIERNEY_SUPPORT


@pytest.mark.parametrize("accept", ["text/turtle", "application/n-triples", "application/rdf+xml",
                                    "application/ld+json", "application/n-quads", "application/trig",
                                    "text/html;q=0.9, text/turtle;q=0.3"])
def test_construct_conneg(endpoint: str, accept: str) -> None:
    q = f"CONSTRUCT {{ <{ID}cmoc/tierney2020-c1> ?p ?o }} WHERE {{ <{ID}cmoc/tierney2020-c1> ?p ?o }}"
    r = requests.post(endpoint, data={"query": q}, headers={"Accept": accept}, timeout=10)
    assert r.status_code == 200
    g = parse_rdf(r.content, r.headers["Content-Type"])
    assert (URIRef(f"{ID}cmoc/tierney2020-c1"), URIRef(f"{CMO}statedIn"), URIRef(f"{ID}source/tierney2020")) in g


@pytest.mark.parametrize(("param", "value", "expected"), [
    ("format", "json", "application/sparql-results+json"), ("output", "xml", "application/sparql-results+xml"),
    ("results", "csv", "text/csv"), ("format", "tsv", "text/tab-separated-values"),
    ("format", "application/sparql-results+xml", "application/sparql-results+xml"),
])
def test_format_parameters(endpoint: str, param: str, value: str, expected: str) -> None:
    r = requests.get(endpoint, params={"query": Q_TIERNEY, param: value}, headers={"Accept": "text/html"},
                     timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == expected


def test_406_when_nothing_acceptable(endpoint: str) -> None:
    r = requests.get(endpoint, params={"query": Q_TIERNEY}, headers={"Accept": "image/png"}, timeout=10)
    assert r.status_code == 406
    r = requests.get(endpoint, params={"query": "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1"},
                     headers={"Accept": "text/csv"}, timeout=10)
    assert r.status_code == 406


def test_errors(endpoint: str) -> None:
    r = requests.get(endpoint, params={"query": "SELECT ?x WHERE {\n  ?x ?y"}, timeout=10)
    assert r.status_code == 400
    assert "line 2, column" in r.text
    r = requests.post(endpoint, data="ASK {}", headers={"Content-Type": "text/plain"}, timeout=10)
    assert r.status_code == 415
    r = requests.put(endpoint, data="ASK {}", timeout=10)
    assert r.status_code == 405 and "POST" in r.headers["Allow"]
    r = requests.delete(endpoint, timeout=10)
    assert r.status_code == 405


def test_dataset_parameters(endpoint: str, seed_evidence_store: EvidenceStore) -> None:
    batch = next(b.iri for b in seed_evidence_store.batches() if b.label.startswith("04-tierney"))
    q = f"SELECT DISTINCT ?c WHERE {{ ?c a <{CMO}CMOConfiguration> }}"
    r = requests.get(endpoint, params={"query": q, "default-graph-uri": batch}, timeout=10)
    only = _bindings(r.content, "c")
    assert only and all(c.startswith(f"{ID}cmoc/tierney2020") for c in only)
    r = requests.get(endpoint, params={"query": q}, timeout=10)
    assert len(_bindings(r.content, "c")) == 49  # no dataset: the union of all batches
    q = f"SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?c a <{CMO}CMOConfiguration> }} }}"
    r = requests.get(endpoint, params={"query": q, "named-graph-uri": batch}, timeout=10)
    assert _bindings(r.content, "g") == {batch}


def test_service_description_by_conneg(endpoint: str) -> None:
    r = requests.get(endpoint, headers={"Accept": "text/turtle"}, timeout=10)
    g = parse_rdf(r.content, r.headers["Content-Type"])
    sd = "http://www.w3.org/ns/sparql-service-description#"
    assert (None, URIRef(sd + "endpoint"), URIRef(endpoint)) in g
    assert (None, URIRef(sd + "supportedLanguage"), URIRef(sd + "SPARQL11Update")) in g  # the token is set
    r = requests.get(endpoint, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, timeout=10)
    assert r.headers["Content-Type"].startswith("text/html") and "<form" in r.text


def test_graph_store_reads(server: str, seed_evidence_store: EvidenceStore) -> None:
    batch = next(b.iri for b in seed_evidence_store.batches() if b.label.startswith("04-tierney"))
    r = requests.get(server + "/store", params={"graph": batch}, headers={"Accept": "application/n-triples"},
                     timeout=10)
    assert r.status_code == 200
    g = parse_rdf(r.content, r.headers["Content-Type"])
    assert (URIRef(batch), URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"), URIRef(f"{CMO}ImportBatch")) in g
    expected = {(q.subject.value, q.predicate.value) for q in seed_evidence_store.ox.quads_for_pattern(
        None, None, None, __import__("pyoxigraph").NamedNode(batch))}
    assert {(str(s), str(p)) for s, p, _ in g} == expected
    r = requests.get(server + "/sparql", params={"graph": batch}, headers={"Accept": "text/turtle"}, timeout=10)
    assert len(parse_rdf(r.content, r.headers["Content-Type"])) == len(g)
    assert requests.get(server + "/store", params={"graph": ID + "batch/none"}, timeout=10).status_code == 404


# -- safe to expose -------------------------------------------------------------------------------------


def test_timeout_503_while_others_are_served(endpoint: str) -> None:
    answers: dict[str, tuple[int, float]] = {}

    def slow() -> None:
        t = time.monotonic()
        r = requests.get(endpoint, params={"query": SLOW}, timeout=30)
        answers["slow"] = (r.status_code, time.monotonic() - t)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.3)
    fast_times = []
    while thread.is_alive():
        t = time.monotonic()
        r = requests.get(endpoint, params={"query": Q_TIERNEY}, timeout=10)
        fast_times.append(time.monotonic() - t)
        assert r.status_code == 200 and _bindings(r.content, "e") == TIERNEY_SUPPORT
        time.sleep(0.1)
    thread.join()
    status, elapsed = answers["slow"]
    assert status == 503
    assert TIMEOUT - 0.1 <= elapsed <= TIMEOUT + 2
    assert fast_times and max(fast_times) < 1.0
    # healthy afterwards: the killed worker is replaced and queries keep working
    for _ in range(4):
        r = requests.get(endpoint, params={"query": Q_TIERNEY}, timeout=10)
        assert r.status_code == 200


def test_row_limit(endpoint: str) -> None:
    r = requests.get(endpoint, params={"query": "SELECT * WHERE { ?s ?p ?o }"}, timeout=10)
    assert r.status_code == 400 and "more than 1000 rows" in r.text and "CMOKG_MAX_ROWS" in r.text
    r = requests.get(endpoint, params={"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 1000"}, timeout=10)
    assert r.status_code == 200 and len(json.loads(r.content)["results"]["bindings"]) == 1000
    r = requests.get(endpoint, params={"query": "CONSTRUCT WHERE { ?s ?p ?o }"}, timeout=10)
    assert r.status_code == 400 and "more than 1000" in r.text


def test_body_size_limit(endpoint: str) -> None:
    big = "ASK {} #" + "x" * 70_000
    r = requests.post(endpoint, data=big, headers={"Content-Type": "application/sparql-query"}, timeout=10)
    assert r.status_code == 413 and "65536 bytes" in r.text


def test_service_refused_and_no_connection_made(endpoint: str) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(1.5)
        port = listener.getsockname()[1]
        for q in (f"SELECT * WHERE {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}",
                  f"PREFIX x: <http://127.0.0.1:{port}/> SELECT * WHERE {{ SERVICE SILENT x:sparql {{ ?s ?p ?o }} }}",
                  f"SELECT * WHERE {{ BIND(<http://127.0.0.1:{port}/> AS ?e) SERVICE ?e {{ ?s ?p ?o }} }}"):
            r = requests.get(endpoint, params={"query": q}, timeout=10)
            assert r.status_code == 400 and "CMOKG_SERVICE_ALLOWLIST" in r.text
        with pytest.raises(TimeoutError):
            listener.accept()


def test_cors_and_no_cookies(endpoint: str) -> None:
    r = requests.options(endpoint, headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "content-type"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "content-type" in r.headers["Access-Control-Allow-Headers"].lower()
    r = requests.post(endpoint, data={"query": "ASK {}"}, headers={"Origin": "https://example.org"}, timeout=10)
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Set-Cookie" not in r.headers and "Access-Control-Allow-Credentials" not in r.headers


def test_concurrent_requests(endpoint: str) -> None:
    errors: list[str] = []

    def client(i: int) -> None:
        for _ in range(5):
            r = requests.post(endpoint, data=Q_COUNT, timeout=20,
                              headers={"Content-Type": "application/sparql-query"})
            if r.status_code != 200 or _bindings(r.content, "n") != {"49"}:
                errors.append(f"{i}: {r.status_code} {r.text[:100]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors


def test_every_config_key_is_documented() -> None:
    import webapp

    for key, (_, doc) in CONFIG.items():
        assert doc.strip(), key
    assert set(webapp.DEFAULTS) == set(CONFIG)
