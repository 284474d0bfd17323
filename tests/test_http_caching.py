"""HTTP caching: ETag and Last-Modified on the linked data, the documents, the endpoint and the catalog, conditional
GET and HEAD answered 304 before the work, validators that change with every write and are never sent for a
store that can change behind the app's back (webapp.httpcache)."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyoxigraph as ox
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from servers import OxigraphServer, cmokg_serve, require
from webforms import good_files, post, zipped
from werkzeug.http import parse_date

import webapp.executor as executor
import webapp.httpcache as httpcache
import webapp.linkeddata as linkeddata
import webapp.memo as memo
from graph.store import EvidenceStore
from graph.vocab import ONTOLOGY_FILE
from webapp import create_app

JSON = "application/sparql-results+json"
TURTLE = "text/turtle"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CMOC = "/id/cmoc/tierney2020-c1"
COUNT = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
TOKEN = "update-token"
REVIEWER = "reviewer-token"


def sparql_url(query: str, **extra: str) -> str:
    return "/sparql?query=" + quote(query, safe="") + "".join(f"&{k}={quote(v, safe='')}" for k, v in extra.items())


def etag(r: Any) -> str:
    tag = r.headers.get("ETag")
    assert tag, f"no ETag on {r.status_code}"
    return str(tag)


def vary(r: Any) -> set[str]:
    return {v.strip().lower() for v in r.headers.get("Vary", "").split(",") if v.strip()}


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's clock five seconds on, so that Last-Modified (sent once its second has passed) is sent."""
    monkeypatch.setattr(httpcache, "_now", lambda: time.time() + 5)


@pytest.fixture
def writable(schema_store: EvidenceStore) -> Flask:
    """An app over a writable on-disk store (ontology and vocabularies), SPARQL Update and web imports on."""
    return create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_QUERY_WORKERS": 0,
                       "CMOKG_UPDATE_TOKEN": TOKEN, "CMOKG_REVIEWER_TOKEN": REVIEWER})


def update(client: FlaskClient, text: str) -> None:
    r = client.post("/sparql", data={"update": text}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 204, r.data


# -- validators and 304 on every route ------------------------------------------------------------------------

CASES = [
    (CMOC, TURTLE), (CMOC, "application/ld+json"), (CMOC, BROWSER), (CMOC, None), (CMOC + ".nt", None),
    (CMOC + ".rdf", BROWSER), ("/ontology", BROWSER), ("/ontology", TURTLE), ("/ontology.jsonld", None),
    ("/shapes", BROWSER), ("/shapes.ttl", None), ("/void", None), ("/void.nt", None), ("/dump.nq", None),
    ("/dump", "application/trig"), ("/store?default", None), ("/store?graph=" + quote(
        "https://w3id.org/cmokg/graph/ontology", safe=""), "application/n-triples"),
    (sparql_url(COUNT), JSON), (sparql_url(COUNT), "text/csv"), (sparql_url(COUNT, format="tsv"), None),
    (sparql_url("CONSTRUCT WHERE { ?s a ?o } LIMIT 3"), TURTLE), ("/sparql", None), ("/sparql", BROWSER),
    ("/queries/reviews-summary", JSON), ("/queries/reviews-summary", BROWSER),
    ("/queries/reviews-summary?format=csv", None), ("/queries", None), ("/queries", BROWSER),
    ("/queries/openapi.json", None), ("/queries/reviews-summary.rq", None), ("/", BROWSER),
    ("/reviews", BROWSER), ("/cmocs?page=1", BROWSER), ("/maps/matrix.svg", None), ("/search?q=trust", BROWSER),
]


@pytest.mark.parametrize(("url", "accept"), CASES)
def test_a_200_carries_validators_and_its_etag_gets_304(client: FlaskClient, url: str, accept: str | None,
                                                        later: None) -> None:
    """Every GET route of the linked data, documents, endpoint and catalog: a weak ETag, Last-Modified and
    Cache-Control; the ETag (or the date) back gets a 304 without a body and with the 200's ETag, Vary and
    Cache-Control; HEAD alike."""
    headers = {"Accept": accept} if accept else {}
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.data[:300]
    tag = etag(r)
    assert tag.startswith('W/"') and tag.endswith('"') and len(tag) > 10
    assert r.headers["Cache-Control"] == "no-cache"
    modified = parse_date(r.headers["Last-Modified"])
    assert modified is not None and modified <= datetime.now(UTC) + timedelta(seconds=5)
    for method in (client.get, client.head):
        again = method(url, headers={**headers, "If-None-Match": tag})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == tag and vary(again) == vary(r)
        assert again.headers["Cache-Control"] == r.headers["Cache-Control"]
        assert "Content-Type" not in again.headers  # nor Last-Modified: the ETag guides the cache (RFC 9110 §15.4.5)
        dated = method(url, headers={**headers, "If-Modified-Since": r.headers["Last-Modified"]})
        assert dated.status_code == 304 and dated.headers["ETag"] == tag
    head = client.head(url, headers=headers)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == tag and head.headers["Content-Type"] == r.headers["Content-Type"]


RDF = {"text/turtle": ox.RdfFormat.TURTLE, "application/ld+json": ox.RdfFormat.JSON_LD,
       "application/n-triples": ox.RdfFormat.N_TRIPLES, "application/rdf+xml": ox.RdfFormat.RDF_XML}


def canonical(fmt: ox.RdfFormat, data: bytes) -> set[ox.Quad]:
    dataset = ox.Dataset(ox.parse(data, fmt))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return set(dataset)


def same_content(mime: str, a: bytes, b: bytes) -> bool:
    """RDF compared as RDF (two serializations of /ontology differ in their blank node labels, minted afresh each
    time the file is parsed: why the ETags are weak), anything else byte for byte."""
    fmt = RDF.get(mime.split(";")[0])
    if fmt is None:
        return a == b
    return canonical(fmt, a) == canonical(fmt, b)


def test_one_etag_is_one_representation(client: FlaskClient) -> None:
    """Requests that share an ETag got the same media type and the same data; each format of a resource has its
    own, so a cache holding one variant is never told that it holds another."""
    seen: dict[str, tuple[str, bytes]] = {}
    accepts = [TURTLE, "application/ld+json", "application/n-triples", "application/rdf+xml", BROWSER, None,
               "*/*", "text/*", "text/turtle;q=0.5, application/ld+json", "application/json", JSON, "text/csv"]
    for url in (CMOC, "/ontology", "/void", "/sparql", sparql_url(COUNT), "/queries/reviews-summary", "/queries"):
        for accept in accepts:
            r = client.get(url, headers={"Accept": accept} if accept else {})
            if r.status_code != 200:
                continue
            mime, data = seen.setdefault(etag(r), (r.headers["Content-Type"], r.data))
            assert mime == r.headers["Content-Type"] and same_content(mime, data, r.data), (url, accept)
    cmoc = {client.get(CMOC, headers={"Accept": a}).headers["ETag"]
            for a in (TURTLE, "application/ld+json", "application/n-triples", "application/rdf+xml", BROWSER)}
    assert len(cmoc) == 5


def test_a_304_of_a_dump_by_suffix_says_vary_as_its_200_does(client: FlaskClient) -> None:
    """Regression: /dump.nq and /void.nt say Vary: Accept although their suffix picks the format; their 304s
    did not, so a cache would have taken the 304 for another variant than the one it held."""
    for url in ("/dump.nq", "/void.nt"):
        r = client.get(url)
        again = client.get(url, headers={"If-None-Match": etag(r)})
        assert again.status_code == 304 and vary(again) == vary(r) == {"accept"}, url


def test_every_route_with_validators_exists(app: Flask) -> None:
    """The route table names endpoints of other modules: a renamed view must not silently lose its validators."""
    assert set(httpcache.BASES) <= set(app.view_functions)


def test_an_etag_of_another_format_gets_the_full_answer(client: FlaskClient) -> None:
    turtle = etag(client.get(CMOC, headers={"Accept": TURTLE}))
    r = client.get(CMOC, headers={"Accept": "application/ld+json", "If-None-Match": turtle})
    assert r.status_code == 200 and r.mimetype == "application/ld+json" and r.headers["ETag"] != turtle


def test_if_none_match_lists_and_strong_forms_compare_weakly(client: FlaskClient) -> None:
    tag = etag(client.get(CMOC, headers={"Accept": TURTLE}))
    opaque = tag[2:]  # W/"x" -> "x": a proxy may strip the weakness
    for header in (f'"other", {tag}', opaque, f'W/"nothing", {opaque} , "x"'):
        assert client.get(CMOC, headers={"Accept": TURTLE, "If-None-Match": header}).status_code == 304, header


def test_if_none_match_star_matches_what_exists_only(client: FlaskClient) -> None:
    """Regression: werkzeug's ETags match every tag when the header is `*`, so the check before the route ran
    answered 304 for a resource that does not exist (a 404)."""
    r = client.get(CMOC, headers={"Accept": TURTLE, "If-None-Match": "*"})
    assert r.status_code == 304 and r.data == b"" and r.headers["ETag"]
    missing = client.get("/id/cmoc/nobody-c9", headers={"If-None-Match": "*"})
    assert missing.status_code == 404 and "ETag" not in missing.headers


def test_if_none_match_wins_over_if_modified_since(client: FlaskClient, later: None) -> None:
    r = client.get(CMOC, headers={"Accept": TURTLE})
    both = {"Accept": TURTLE, "If-None-Match": '"not-this-one"', "If-Modified-Since": r.headers["Last-Modified"]}
    assert client.get(CMOC, headers=both).status_code == 200


def test_an_earlier_date_gets_the_answer(client: FlaskClient, later: None) -> None:
    r = client.get(CMOC, headers={"Accept": TURTLE})
    modified = parse_date(r.headers["Last-Modified"])
    assert modified is not None
    earlier = format_datetime(modified - timedelta(seconds=1), usegmt=True)
    assert client.get(CMOC, headers={"Accept": TURTLE, "If-Modified-Since": earlier}).status_code == 200


# -- the 304 comes before the work ----------------------------------------------------------------------------


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_repeated_sparql_get_is_not_run_again(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = counting(monkeypatch, executor, "run_job")
    url = sparql_url(COUNT)
    r = client.get(url, headers={"Accept": JSON})
    assert r.status_code == 200 and len(runs) == 1
    for method in (client.get, client.head):
        assert method(url, headers={"Accept": JSON, "If-None-Match": etag(r)}).status_code == 304
    assert len(runs) == 1


def test_a_catalog_query_and_void_are_not_run_again(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = counting(monkeypatch, executor, "run_job")
    for url in ("/queries/reviews-summary", "/void"):
        client.application.extensions.pop(memo.KEY, None)  # /void's statistics are kept per store version
        r = client.get(url)
        before = len(runs)
        assert r.status_code == 200 and before > 0
        assert client.get(url, headers={"If-None-Match": etag(r)}).status_code == 304
        assert len(runs) == before, url
        runs.clear()


def test_a_resource_is_not_described_again(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    described = counting(monkeypatch, linkeddata, "describe")
    rendered = counting(monkeypatch, linkeddata, "html_page")
    turtle, page = client.get(CMOC, headers={"Accept": TURTLE}), client.get(CMOC, headers={"Accept": BROWSER})
    assert (len(described), len(rendered)) == (1, 1)
    assert client.get(CMOC, headers={"Accept": TURTLE, "If-None-Match": etag(turtle)}).status_code == 304
    assert client.get(CMOC, headers={"Accept": BROWSER, "If-None-Match": etag(page)}).status_code == 304
    assert (len(described), len(rendered)) == (1, 1)


# -- writes change the validators -----------------------------------------------------------------------------


def test_an_update_changes_every_store_validator(writable: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a SPARQL Update the old ETag (and the old date) get 200 with a new ETag and a later Last-Modified."""
    clock = [time.time() + 5]
    monkeypatch.setattr(httpcache, "_now", lambda: clock[0])
    client = writable.test_client()
    url = sparql_url("SELECT ?l WHERE { <https://w3id.org/cmokg/id/thing/x> ?p ?l }")
    urls = [url, "/void", "/sparql", "/dump.nq", "/"]
    before = {u: client.get(u, headers={"Accept": JSON} if u == url else {}) for u in urls}
    assert client.get("/id/thing/x").status_code == 404
    update(client, 'INSERT DATA { GRAPH <urn:g> { <https://w3id.org/cmokg/id/thing/x> <urn:p> "one" } }')
    clock[0] = time.time() + 10
    for u, old in before.items():
        headers = {"Accept": JSON} if u == url else {}
        r = client.get(u, headers={**headers, "If-None-Match": etag(old)})
        assert r.status_code == 200 and etag(r) != etag(old), u
        new_date, old_date = parse_date(r.headers["Last-Modified"]), parse_date(old.headers["Last-Modified"])
        assert new_date is not None and old_date is not None and new_date > old_date, u
        dated = client.get(u, headers={**headers, "If-Modified-Since": old.headers["Last-Modified"]})
        assert dated.status_code == 200, u
        assert client.get(u, headers={**headers, "If-None-Match": etag(r)}).status_code == 304, u
    assert b'"one"' in client.get(url, headers={"Accept": JSON}).data
    thing = client.get("/id/thing/x", headers={"Accept": TURTLE})
    assert thing.status_code == 200
    update(client, 'DELETE DATA { GRAPH <urn:g> { <https://w3id.org/cmokg/id/thing/x> <urn:p> "one" } } ; '
                   'INSERT DATA { GRAPH <urn:g> { <https://w3id.org/cmokg/id/thing/x> <urn:p> "two" } }')
    r = client.get("/id/thing/x", headers={"Accept": TURTLE, "If-None-Match": etag(thing)})
    assert r.status_code == 200 and b'"two"' in r.data


def test_a_web_import_changes_the_validators(writable: Flask) -> None:
    client = writable.test_client()
    old = client.get("/queries/reviews-summary", headers={"Accept": JSON})
    r = post(client, "/review/import", "extraction.zip", zipped(good_files()), token=REVIEWER, reviewer="Ada",
             format="json")
    assert r.status_code == 201, r.data
    new = client.get("/queries/reviews-summary", headers={"Accept": JSON, "If-None-Match": etag(old)})
    assert new.status_code == 200 and etag(new) != etag(old) and new.data != old.data


def test_a_restart_changes_the_store_validators_but_not_the_ontologys(schema_store: EvidenceStore) -> None:
    """The write count starts again with every run, and the store may have been written while the server was
    stopped: an ETag of an earlier run must not match. The ontology's RDF is its file: same ETag."""
    config = {"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_QUERY_WORKERS": 0}
    first = create_app(config).test_client()
    void, ontology = first.get("/void"), first.get("/ontology.ttl")
    schema_store.update('INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> "written while stopped" } }')
    second = create_app(config).test_client()
    assert second.get("/void", headers={"If-None-Match": etag(void)}).status_code == 200
    assert second.get("/ontology.ttl", headers={"If-None-Match": etag(ontology)}).status_code == 304


def test_the_ontology_file_gives_its_own_date(client: FlaskClient) -> None:
    r = client.get("/ontology.ttl")
    expected = datetime.fromtimestamp(math.floor(max(ONTOLOGY_FILE.stat().st_mtime, ONTOLOGY_FILE.stat().st_ctime)),
                                      UTC)
    if time.time() - expected.timestamp() > 1:
        assert parse_date(r.headers["Last-Modified"]) == expected


def test_every_write_moves_the_date_by_a_whole_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Last-Modified has whole seconds: two writes in one second, or a write after the clock was set back, must
    still each give a later date, or a client revalidating by date would keep the copy from between them."""
    lock = executor.WriteLock(lambda: 0, lambda: None)
    start = lock.state[1]
    with lock:
        pass
    with lock:
        pass
    monkeypatch.setattr(executor.time, "time", lambda: start - 3600)  # the clock set back an hour
    with lock:
        pass
    assert lock.state[0] == 3 and math.floor(lock.state[1]) >= math.floor(start) + 3


def test_no_last_modified_in_the_second_of_a_change(client: FlaskClient, app: Flask,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A date sent in the second the store changed could not tell that state from one later in that second."""
    changed = app.extensions["cmokg_write_lock"].state[1]
    monkeypatch.setattr(httpcache, "_now", lambda: math.floor(changed) + 0.999)
    r = client.get(CMOC, headers={"Accept": TURTLE})
    assert r.status_code == 200 and "Last-Modified" not in r.headers and r.headers["ETag"]
    assert client.get(CMOC, headers={"Accept": TURTLE, "If-Modified-Since": "Fri, 31 Dec 9999 23:59:59 GMT"}
                      ).status_code == 200


# -- what gets no validators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["SELECT (NOW() AS ?t) WHERE {}", "SELECT (RAND() AS ?r) WHERE {}",
                                   "SELECT (STRUUID() AS ?u) WHERE {}"])
def test_a_query_not_answered_by_the_store_alone_is_not_stored(client: FlaskClient, query: str) -> None:
    r = client.get(sparql_url(query), headers={"Accept": JSON})
    assert r.status_code == 200 and "ETag" not in r.headers and "Last-Modified" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"


def test_post_queries_are_not_cached(client: FlaskClient) -> None:
    tag = etag(client.get(sparql_url(COUNT), headers={"Accept": JSON}))
    for r in (client.post("/sparql", data={"query": COUNT}, headers={"Accept": JSON, "If-None-Match": tag}),
              client.post("/sparql", data=COUNT, content_type="application/sparql-query",
                          headers={"Accept": JSON, "If-None-Match": tag})):
        assert r.status_code == 200 and "ETag" not in r.headers and r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("url", "status"), [("/id/cmoc/nobody-c9", 404), ("/void", 406),
                                             (sparql_url("SELECT WHERE"), 400), ("/queries/nothing-such", 404),
                                             ("/store?graph=urn:none", 404)])
def test_errors_carry_no_validators_and_are_not_stored(client: FlaskClient, url: str, status: int) -> None:
    headers = {"Accept": "image/png"} if url == "/void" else {}
    r = client.get(url, headers=headers)
    assert r.status_code == status and "ETag" not in r.headers and "Last-Modified" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"


def test_review_pages_are_left_alone(client: FlaskClient) -> None:
    r = client.get("/review", headers={"Accept": BROWSER})
    assert r.status_code == 200 and "ETag" not in r.headers


# -- bad conditional headers ----------------------------------------------------------------------------------

GARBAGE_TAGS = ["garbage", '"unterminated', "W/", ",,,", "W/W/\"x\"", '"a" garbage "b"', "\xff\xfe", "*, *",
                '"' + "x" * 5000 + '"', "W/\"\"", ";", "\t", " , W/\"a\",,"]
BAD_DATES = ["yesterday", "Mon, 99 Foo 99999 99:99:99 GMT", "Mon, 01 Jan 0000 00:00:00 GMT", "0", "-1", "1e400",
             "Sat, 01 Jan 10000 00:00:00 GMT", "Mon, 01 Jan 2020 25:61:61 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
             "\xff", "Thu, 01 Jan 1970 00:00:00 GMT", ""]


@pytest.mark.parametrize("header", GARBAGE_TAGS)
def test_a_garbage_if_none_match_gets_the_answer(client: FlaskClient, header: str) -> None:
    for url in (CMOC, sparql_url(COUNT), "/ontology.ttl"):
        r = client.get(url, headers={"If-None-Match": header})
        assert r.status_code == 200, (url, header)


@pytest.mark.parametrize("accept", [";;;", ",,", "*/*;q=abc", "text/turtle;q=1e999", "\xff/\xfe", "a/b/c;q=-1"])
def test_a_garbage_accept_with_a_condition_is_no_server_error(client: FlaskClient, accept: str) -> None:
    for url in (CMOC, sparql_url(COUNT), "/queries/reviews-summary", "/void", "/sparql"):
        r = client.get(url, headers={"Accept": accept, "If-None-Match": '"x"'})
        assert r.status_code < 500, (url, accept)
        if r.status_code == 200:
            assert client.get(url, headers={"Accept": accept, "If-None-Match": etag(r)}).status_code == 304


@pytest.mark.parametrize("header", BAD_DATES)
def test_a_bad_or_future_if_modified_since_gets_the_answer(client: FlaskClient, header: str, later: None) -> None:
    for url in (CMOC, sparql_url(COUNT), "/ontology.ttl"):
        r = client.get(url, headers={"If-Modified-Since": header})
        assert r.status_code == 200, (url, header)


# -- configuration and CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "sent"), [("max-age=60, must-revalidate", "max-age=60, must-revalidate"),
                                              ("", None)])
def test_cache_control_is_configured(seed_evidence_store: EvidenceStore, policy: str, sent: str | None) -> None:
    client = create_app({"TESTING": True, "CMOKG_STORE_OBJECT": seed_evidence_store, "CMOKG_QUERY_WORKERS": 0,
                         "CMOKG_CACHE_CONTROL": policy}).test_client()
    r = client.get(CMOC, headers={"Accept": TURTLE})
    assert r.headers.get("Cache-Control") == sent and r.headers["ETag"]
    again = client.get(CMOC, headers={"Accept": TURTLE, "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.headers.get("Cache-Control") == sent
    assert client.get("/id/cmoc/nobody-c9").headers["Cache-Control"] == "no-store"


def test_cors_lets_scripts_revalidate(client: FlaskClient) -> None:
    r = client.get(CMOC, headers={"Accept": TURTLE, "Origin": "https://example.org"})
    assert "etag" in r.headers["Access-Control-Expose-Headers"].lower()
    allowed = r.headers["Access-Control-Allow-Headers"].lower()
    assert "if-none-match" in allowed and "if-modified-since" in allowed


# -- a remote store -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OxigraphServer]:
    require("oxigraph")
    with OxigraphServer(tmp_path_factory.mktemp("httpcache-remote") / "db") as server:
        yield server


def _remote_update(server: OxigraphServer, text: str) -> None:
    r = requests.post(server.update_url, data=text.encode(),
                      headers={"Content-Type": "application/sparql-update"}, timeout=30)
    assert r.status_code in (200, 204), r.text


def test_a_remote_store_gets_no_validators(oxigraph: OxigraphServer) -> None:
    """`serve --endpoint`: the store can change behind the app's back, so nothing read from it is validated, and
    a conditional request is answered in full with what the store holds now; the ontology file keeps its ETag."""
    thing = "https://w3id.org/cmokg/id/thing/remote"
    _remote_update(oxigraph, f'INSERT DATA {{ GRAPH <urn:g> {{ <{thing}> <urn:p> "one" }} }}')
    client = create_app({"TESTING": True, "CMOKG_ENDPOINT": oxigraph.query_url, "CMOKG_QUERY_WORKERS": 0}).test_client()
    url = sparql_url(f"SELECT ?v WHERE {{ <{thing}> <urn:p> ?v }}")
    first = {u: client.get(u, headers={"Accept": JSON}) for u in (url, "/id/thing/remote.ttl")}
    for r in first.values():
        assert r.status_code == 200 and "ETag" not in r.headers and "Last-Modified" not in r.headers
        assert r.headers["Cache-Control"] == "no-cache"
    _remote_update(oxigraph, f'DELETE WHERE {{ GRAPH <urn:g> {{ <{thing}> <urn:p> ?v }} }} ; '
                             f'INSERT DATA {{ GRAPH <urn:g> {{ <{thing}> <urn:p> "two" }} }}')
    recent = format_datetime(datetime.now(UTC) - timedelta(seconds=1), usegmt=True)
    for u in first:
        r = client.get(u, headers={"Accept": JSON, "If-None-Match": "*"})
        assert r.status_code == 200 and b"two" in r.data and "ETag" not in r.headers, u
        r = client.get(u, headers={"Accept": JSON, "If-Modified-Since": recent})
        assert r.status_code == 200 and b"two" in r.data and "ETag" not in r.headers, u
    ontology = client.get("/ontology.ttl")
    assert client.get("/ontology.ttl", headers={"If-None-Match": etag(ontology)}).status_code == 304


# -- through the real server ----------------------------------------------------------------------------------

SLOW = "SELECT (COUNT(*) AS ?n) WHERE { ?a a ?c . ?d ?e ?f }"  # 5M rows on the seed graph: about half a second


@pytest.mark.timeout(180)
def test_cmokg_serve_answers_a_repeated_query_304_and_a_write_changes_it(seed_store_path: Path,
                                                                         tmp_path: Path) -> None:
    """gunicorn with query workers and the result cache, as `cmokg serve` runs: the repeated GET is a 304 that
    never reaches a worker (it takes a small part of the query's time), HEAD alike; after a SPARQL Update the old
    ETag and date get the new answer."""
    store = tmp_path / "store"
    shutil.copytree(seed_store_path, store)
    env = {"CMOKG_UPDATE_TOKEN": TOKEN, "CMOKG_QUERY_TIMEOUT": "60"}
    with cmokg_serve(["--store", str(store)], env=env) as base:
        url = base + sparql_url(SLOW)
        time.sleep(1.1)  # Last-Modified is sent once the second of the server's start has passed
        started = time.perf_counter()
        first = requests.get(url, headers={"Accept": JSON}, timeout=60)
        full = time.perf_counter() - started
        assert first.status_code == 200 and first.json()["results"]["bindings"][0]["n"]["value"] == "5158575"
        tag, modified = etag(first), first.headers["Last-Modified"]
        assert "accept" in vary(first) and first.headers["Cache-Control"] == "no-cache"
        started = time.perf_counter()
        again = requests.get(url, headers={"Accept": JSON, "If-None-Match": tag}, timeout=60)
        revalidated = time.perf_counter() - started
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == tag
        assert "accept" in vary(again)
        assert revalidated < full / 4, (revalidated, full)
        head = requests.head(url, headers={"Accept": JSON, "If-Modified-Since": modified}, timeout=60)
        assert head.status_code == 304 and head.headers["ETag"] == tag
        garbage = requests.get(url, headers={"Accept": JSON, "If-None-Match": "W/\"x", "If-Modified-Since": "never"},
                               timeout=60)
        assert garbage.status_code == 200
        time.sleep(1.1)  # the write lands in a later second than the first answer's date
        r = requests.post(base + "/sparql", data={"update": 'INSERT DATA { GRAPH <urn:g> { <urn:a> a <urn:b> } }'},
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert r.status_code == 204
        time.sleep(1.1)
        after = requests.get(url, headers={"Accept": JSON, "If-None-Match": tag}, timeout=60)
        assert after.status_code == 200 and etag(after) != tag
        assert after.json()["results"]["bindings"][0]["n"]["value"] != "5158575"
        dated = requests.get(url, headers={"Accept": JSON, "If-Modified-Since": modified}, timeout=60)
        assert dated.status_code == 200
        assert requests.get(url, headers={"Accept": JSON, "If-None-Match": etag(after)}, timeout=60).status_code == 304
        print(f"full answer {full * 1000:.0f} ms, 304 {revalidated * 1000:.1f} ms")
