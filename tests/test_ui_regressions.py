"""Regressions found by exploratory QA of the pages people browse.

- `?page=` with a digit of another kind ('²', '①'): str.isdigit() accepted it and int() raised, a 500 on every
  paged page; only ASCII digits are page numbers now.
- An IRI or URL in the graph with a javascript: or data: scheme (SPARQL Update or a remote store can hold one;
  the workbook importer refuses such URLs) became a clickable link on the linked-data pages, the CMOC list and
  the network map (whose page opens a CMOC's href on double-click).
- Control characters in the search text (a NUL) were searched for and written back into the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_browse import parse_html

from graph.namespaces import BASE
from graph.store import EvidenceStore
from webapp import create_app

ID = BASE + "id/"
CMO = "https://w3id.org/cmokg/ontology#"

PAGED = ("/cmocs?", "/reviews?", "/reviews/calderon2021?", "/search?q=trust&", "/maps/network?",
         "/maps/network.json?", "/maps/network.svg?")


@pytest.mark.parametrize("value", ["²", "①", "１", "١", "𝟚"])
@pytest.mark.parametrize("route", PAGED)
def test_page_numbers_in_other_digits_are_400(client: FlaskClient, route: str, value: str) -> None:
    r = client.get(route + "page=" + value)
    assert r.status_code == 400, (route, value, r.status_code)


@pytest.mark.parametrize("route", PAGED)
def test_ascii_page_numbers_still_work(client: FlaskClient, route: str) -> None:
    assert client.get(route + "page=1").status_code == 200
    assert client.get(route + "page=%201%20").status_code == 200


# -- links the data must not turn into script --------------------------------------------------------------

HOSTILE = ("javascript:alert(1)", "JavaScript:alert(2)", "data:text/html,<script>alert(3)</script>")


@pytest.fixture
def hostile_app(schema_store: EvidenceStore) -> Iterator[Flask]:
    """The schema plus a review citing documents and CMOCs with javascript:/data: IRIs and URLs."""
    doc = f"<{ID}source/hostile-review>"
    cmoc = f"<{ID}cmoc/hostile-c1>"
    evil_cmoc = "<javascript:alert(4)>"
    evil_doc = "<javascript:alert(5)>"
    schema_store.update(f"""PREFIX cmo: <{CMO}> PREFIX cito: <http://purl.org/spar/cito/>
        PREFIX fabio: <http://purl.org/spar/fabio/> PREFIX dcterms: <http://purl.org/dc/terms/>
        INSERT DATA {{ GRAPH <{ID}batch/hostile> {{
        {doc} a cmo:Review, cmo:Document ; dcterms:title "Hostile review" ; cmo:authorList "Doe, J" ;
            fabio:hasURL "{HOSTILE[0]}" ; cito:cites {evil_doc}, <data:text/html,x> .
        {evil_doc} a cmo:Document ; dcterms:title "Evil document" ; fabio:hasURL "  {HOSTILE[1]}" .
        {cmoc} a cmo:CMOConfiguration ; cmo:authorLabel "C1" ; cmo:statedIn {doc} ; cmo:leadsTo {evil_cmoc} .
        {evil_cmoc} a cmo:CMOConfiguration ; cmo:authorLabel "Evil CMOC" ; cmo:statedIn {evil_doc} .
        }} }}""")
    schema_store.flush()
    yield create_app({"TESTING": True, "CMOKG_STORE_OBJECT": schema_store, "CMOKG_QUERY_WORKERS": 0})


def _targets(html: str) -> list[str]:
    """Every href, src and xlink:href of a document (HTML, with SVG inside), as written."""
    return [value for el in parse_html(html).iter() for name, value in el.attrs.items()
            if name in ("href", "src", "xlink:href", "action", "formaction")]


def _scripted(target: str) -> bool:
    cleaned = "".join(c for c in target if c > " " and c not in "\t\n\r").lower()
    return cleaned.startswith(("javascript:", "data:", "vbscript:"))


@pytest.mark.parametrize("path", ["/id/source/hostile-review", "/id/cmoc/hostile-c1", "/cmocs", "/maps/network",
                                  "/maps/network.svg", "/reviews/hostile-review", "/reviews"])
def test_javascript_iris_and_urls_are_not_links(hostile_app: Flask, path: str) -> None:
    r = hostile_app.test_client().get(path, headers={"Accept": "text/html"})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    targets = _targets(r.get_data(as_text=True))
    assert targets, "the page links somewhere"
    assert not [t for t in targets if _scripted(t)], path


def test_network_json_hrefs_are_never_scripts(hostile_app: Flask) -> None:
    elements: dict[str, Any] = hostile_app.test_client().get("/maps/network.json").get_json()
    cmocs = [n["data"] for n in elements["nodes"] if n["data"].get("kind") == "cmoc"]
    assert {c["id"] for c in cmocs} >= {"javascript:alert(4)", f"{ID}cmoc/hostile-c1"}
    assert not [c for c in cmocs if _scripted(str(c["href"]))]
    assert {c["href"] for c in cmocs if c["id"] == f"{ID}cmoc/hostile-c1"} == {"/id/cmoc/hostile-c1"}


def test_web_urls_stay_links(hostile_app: Flask, schema_store: EvidenceStore) -> None:
    schema_store.update(f"""PREFIX fabio: <http://purl.org/spar/fabio/> DELETE WHERE {{ GRAPH ?g {{
        <{ID}source/hostile-review> fabio:hasURL ?u }} }};
        INSERT DATA {{ GRAPH <{ID}batch/hostile> {{ <{ID}source/hostile-review> fabio:hasURL
        "https://example.org/review" }} }}""")
    html = hostile_app.test_client().get("/id/source/hostile-review", headers={"Accept": "text/html"})
    assert "https://example.org/review" in _targets(html.get_data(as_text=True))


# -- search text --------------------------------------------------------------------------------------------


def test_control_characters_in_search_are_spaces(client: FlaskClient) -> None:
    plain = client.get("/search?q=trust")
    nul = client.get("/search?q=%00trust%00")
    assert plain.status_code == nul.status_code == 200
    total = parse_html(plain.get_data(as_text=True)).one(id="total").attrs["data-total"]
    assert int(total) > 0
    body = nul.get_data(as_text=True)
    assert "\x00" not in body
    assert parse_html(body).one(id="total").attrs["data-total"] == total


def test_only_control_characters_is_the_empty_search(client: FlaskClient) -> None:
    r = client.get("/search?q=%00%01%7F")
    assert r.status_code == 200
    assert "\x00" not in r.get_data(as_text=True)
    assert not parse_html(r.get_data(as_text=True)).find_all(id="total")
