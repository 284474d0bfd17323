"""W3C SPARQL 1.1 Protocol and Service Description tests, run from their manifests against `cmokg serve`.

The manifests (tests/conformance/w3c-sparql11/, W3C test-suite licence beside them) describe each test as
HTTP requests in RDF (ht: vocabulary) with the expected status class, result format and boolean. The runner
sends each request as written to a live gunicorn server on a loopback port with update enabled (the runner
adds the bearer token to every request), loads the `ut:graphData` files first through SPARQL Update, and
parses every response by its media type.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conformance.server import RDF_PARSERS, TOKEN, live_server, parse_rdf
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection

W3C = Path(__file__).parent / "conformance" / "w3c-sparql11"
MF = Namespace("http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#")
HT = Namespace("http://www.w3.org/2011/http#")
CNT = Namespace("http://www.w3.org/2011/content#")
HTS = Namespace("http://www.w3.org/2011/http-statusCodes#")
UT = Namespace("http://www.w3.org/2009/sparql/tests/test-update#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
RDFS_LABEL = URIRef("http://www.w3.org/2000/01/rdf-schema#label")
SRX = "{http://www.w3.org/2005/sparql-results#}"

RESULT_TYPES = {"application/sparql-results+json", "application/sparql-results+xml", "text/csv",
                "text/tab-separated-values", "application/json", "application/xml"}


def _manifest(path: Path) -> tuple[Graph, list[URIRef]]:
    g = Graph()
    g.parse(path, format="turtle", publicID=path.as_uri())
    manifest = next(iter(g.subjects(RDF.type, MF.Manifest)))
    entries = Collection(g, g.value(manifest, MF.entries))
    return g, [URIRef(e) for e in entries]


PROTOCOL, PROTOCOL_TESTS = _manifest(W3C / "protocol" / "manifest.ttl")
SERVICE_DESCRIPTION, SD_TESTS = _manifest(W3C / "service-description" / "manifest.ttl")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("conformance")
    with live_server(work / "empty-store", work, CMOKG_UPDATE_TOKEN=TOKEN, CMOKG_QUERY_WORKERS="2") as url:
        yield url


def test_manifests_hold_the_expected_tests() -> None:
    assert len(PROTOCOL_TESTS) == 34
    assert len(SD_TESTS) == 3


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _load_graph_data(server: str, test: URIRef) -> None:
    for gd in PROTOCOL.objects(test, UT.graphData):
        name, file = PROTOCOL.value(gd, RDFS_LABEL), PROTOCOL.value(gd, UT.graph)
        data = Path(str(file).removeprefix("file://")).read_text()
        r = requests.post(server + "/sparql", data=f"DROP SILENT GRAPH <{name}> ;\n"
                          f"INSERT DATA {{ GRAPH <{name}> {{ {data} }} }}".encode(),
                          headers={"Content-Type": "application/sparql-update", **_auth()}, timeout=20)
        assert r.status_code == 204, r.text


def _status_ok(status: int, expected: set[URIRef]) -> bool:
    return any(e == HTS[f"StatusCode{status // 100}xx"] for e in expected)


def _boolean(r: requests.Response) -> bool:
    mime = r.headers["Content-Type"].split(";")[0]
    if mime in ("application/sparql-results+json", "application/json"):
        value = json.loads(r.content)["boolean"]
    else:
        root = ET.fromstring(r.content)
        el = root.find(f"{SRX}boolean")
        assert el is not None and el.text is not None
        value = el.text.strip() == "true"
    assert isinstance(value, bool)
    return value


def _check_format(r: requests.Response, expected: str) -> None:
    mime = r.headers["Content-Type"].split(";")[0]
    if expected in ("boolean", "tabular"):
        assert mime in RESULT_TYPES, mime
        if mime.endswith("json"):
            doc = json.loads(r.content)
            assert ("boolean" in doc) if expected == "boolean" else ("bindings" in doc["results"])
        elif mime.endswith("xml"):
            root = ET.fromstring(r.content)
            tag = "boolean" if expected == "boolean" else "results"
            assert root.find(f"{SRX}{tag}") is not None
    else:
        assert mime in RDF_PARSERS, mime
        parse_rdf(r.content, mime)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("test", PROTOCOL_TESTS, ids=lambda t: str(t).split("#")[-1])
def test_protocol(server: str, test: URIRef) -> None:
    _load_graph_data(server, test)
    action = PROTOCOL.value(test, MF.action)
    for req in Collection(PROTOCOL, PROTOCOL.value(action, HT.requests)):
        path = str(PROTOCOL.value(req, HT.absolutePath))
        method = str(PROTOCOL.value(req, HT.methodName))
        headers = _auth()
        hlist = PROTOCOL.value(req, HT.headers)
        if hlist is not None:
            for h in Collection(PROTOCOL, hlist):
                headers[str(PROTOCOL.value(h, HT.fieldName))] = str(PROTOCOL.value(h, HT.fieldValue))
        body_node = PROTOCOL.value(req, HT.body)
        body = str(PROTOCOL.value(body_node, CNT.chars)).encode() if body_node is not None else None
        r = requests.request(method, server + path, data=body, headers=headers, timeout=30)
        resp = PROTOCOL.value(req, HT.resp)
        expected = set(PROTOCOL.objects(resp, MF.expectedStatus))
        assert _status_ok(r.status_code, expected), (r.status_code, r.text)  # type: ignore[arg-type]
        fmt = PROTOCOL.value(resp, MF.expectedFormat)
        if fmt is not None:
            _check_format(r, str(fmt))
        boolean = PROTOCOL.value(resp, MF.expectedBoolean)
        if boolean is not None:
            assert isinstance(boolean, Literal)
            assert _boolean(r) is boolean.toPython()


def _service_description(server: str, accept: str) -> Graph:
    r = requests.get(server + "/sparql", headers={"Accept": accept}, timeout=10)
    assert r.status_code == 200
    mime = r.headers["Content-Type"].split(";")[0]
    assert mime in RDF_PARSERS
    return parse_rdf(r.content, mime)


SD_LANGUAGES = {SD.SPARQL10Query, SD.SPARQL11Query, SD.SPARQL11Update}


def _check_sd(server: str, name: str, g: Graph) -> None:
    if name == "returns-rdf":
        assert len(g) > 0
    elif name == "has-endpoint-triple":
        assert (None, SD.endpoint, URIRef(server + "/sparql")) in g
    elif name == "conforms-to-schema":
        services = set(g.subjects(RDF.type, SD.Service))
        assert len(services) == 1
        service = next(iter(services))
        assert set(g.objects(service, SD.supportedLanguage)) <= SD_LANGUAGES
        assert SD.SPARQL11Query in set(g.objects(service, SD.supportedLanguage))
        assert all(isinstance(f, URIRef) for f in g.objects(service, SD.resultFormat))
        assert all(isinstance(f, URIRef) for f in g.objects(service, SD.feature))
        for ds in g.objects(service, SD.defaultDataset):
            assert (ds, RDF.type, SD.Dataset) in g
            for dg in g.objects(ds, SD.defaultGraph):
                assert (dg, RDF.type, SD.Graph) in g
            for ng in g.objects(ds, SD.namedGraph):
                assert (ng, RDF.type, SD.NamedGraph) in g
                assert isinstance(g.value(ng, SD.name), URIRef)
    else:
        raise AssertionError(f"unknown service-description test {name}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("accept", ["text/turtle", "application/rdf+xml", "application/ld+json", "*/*"])
@pytest.mark.parametrize("test", SD_TESTS, ids=lambda t: str(t).split("#")[-1])
def test_service_description(server: str, test: URIRef, accept: str) -> None:
    _check_sd(server, str(test).split("#")[-1], _service_description(server, accept))
